"""Business rules of Kargo. Every rule lives here once; pages and the JSON API both call it.

Services open and commit transactions and raise the domain errors of `app.services.errors`.
"""
