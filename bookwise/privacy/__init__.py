"""Privacy: the workflows' retention applied, and a client's data exported or erased.

``retention`` plans and applies what each workflow's ``retention`` asks (the ``apply-retention``
job and ``bookwise retention``); ``clients`` exports and erases everything held about an e-mail
address (the back office, ``bookwise client``, the API and the manage page); ``erasure`` holds
what both remove and how (pseudonyms, answers, the outbox). See docs/privacy.md.
"""
