"""Deploy platforms behind one interface (`base.Platform`): Railway, Vercel, Kubernetes, a signed webhook.

`registry.build_platforms` makes one client per service from settings; `follow.follow` watches a
deployment until it finishes.
"""
