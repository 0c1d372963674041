"""The static dashboard, rendered from the results database (like `asv publish`): one
module per page under pages/, published by publish.py. It reads results only."""
