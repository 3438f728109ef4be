"""Privacy requests from intake to proof: a person asks (Art. 5, 6, 7 or a withdrawal of
consent), proves their e-mail with a one-time code, staff decide and act, the person is told,
and every step is kept.

    model     the request as a timeline of entries, folded into its state (pure)
    codes     one-time codes: drawn, kept as keyed hashes, checked (pure)
    seal      ids and what people wrote, sealed at rest
    log       the timeline table: append an entry, read a request, count for the limits
    wording   kinds, statuses and grounds in Japanese and English (pure)
    mail      templates in the person's language, the outbox, the SMTP sender
    notify    a request's mail, the mailbox budget, the overdue list, the zip to attach
    fulfil    the operation completing runs: export, purge, suppress
    desk      the workflow: submit, verify, act, complete, under one lock
    api       ``/v1/requests``: intake for web processes, the queue for staff consoles
"""
