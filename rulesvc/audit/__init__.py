"""Evidence: the hash chain (`chain`), what it vouches for in other tables (`evidence`) and signed
checkpoints kept outside the database (`checkpoints`)."""
