"""`python -m stacks serve`: the portal's HTTP service over the Automation API layer
(`stacks.automation`). `app.py` is the FastAPI app, `manager.py` runs operations (one per stack, a
bounded pool of worker processes), `worker.py` is one operation's process, `store.py` keeps
operations and their events in SQLite."""
