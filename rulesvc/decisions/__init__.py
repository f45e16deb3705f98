"""Deciding: an event's decision (`service`), a timer point's (`timer_service`), the stored record both build
(`record`), what storing it does to the ticket (`ticket_work`) and the ports storage implements (`ports`)."""
