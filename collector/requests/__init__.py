"""Privacy requests from intake to proof: a person asks (Art. 5, 6, 7 or a withdrawal of
consent), proves their e-mail with a one-time code, staff decide and act, the person is told,
and every step is kept.

    model     the request as a timeline of entries, folded into its state (pure)
    codes     one-time codes: drawn, kept as keyed hashes, checked (pure)
    log       the timeline table: append an entry, read a request, list the queue
    mail      templates in the person's language, the outbox, the SMTP sender
    desk      the workflow: submit, verify, act, notify, under one lock per request
    api       ``/v1/requests``: intake for web processes, the queue for staff consoles
"""
