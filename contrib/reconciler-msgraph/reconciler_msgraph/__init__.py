"""Microsoft 365 licences through Microsoft Graph v1.0: a reconciler vendor in its own package.

`provider` talks to Graph; `simulator` is the sandbox's Graph, written from Microsoft's
reference alone (the two share no code). Found by reconciler through entry points only.
"""
