"""The customer model: who is still a customer, and what they will buy.

A BG/NBD model (purchases and dropout) and a Gamma-Gamma model (spend per purchase),
fitted by maximum likelihood with SciPy on each customer's completed purchase days
before the as-of date. Pure code (`bgnbd`, `gamma_gamma`, `maximum_likelihood`,
`customer_model`, `synthetic`) is tested without a database; `store` reads the
purchase histories from the marts and keeps the predictions and each fit in the
`prediction` schema.
"""
