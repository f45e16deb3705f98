"""People and service accounts: who holds the API keys and sessions, what roles they have, and how they
sign in.

A principal is a person (`user`: display name, unique sign-in name, roles, enabled or disabled) or a
service account (`service`: a ticket tool, optionally owned by a person). Every API key belongs to one
principal, and a key's roles never exceed its owner's: the roles in effect are the key's roles that the
owner still holds, and a disabled owner's keys stop working. Every administrative change (a user created,
their roles changed, disabled, a key created or revoked) is a chain entry naming who did it.
"""
