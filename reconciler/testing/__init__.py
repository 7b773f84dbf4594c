"""`reconciler.testing`: the conformance kit every vendor package runs.

Given a provider id whose provider and simulator are installed (entry points
`reconciler.providers` and `reconciler.simulators`), the kit holds the vendor to the
properties the built-in vendors are held to, through the real CLI against the
vendor's own simulator: plan → apply → plan converges (in-process and over HTTP),
a tampered plan file is refused with nothing sent, a saved plan applies once,
hostile ids never reach another URL, the fault matrix (5xx, drops, stalls, 429
bursts with Retry-After, a vendor limit at half the configured rate) converges with
no change made twice, a SIGKILLed apply converges, secrets never reach output,
journal or plan file, `import` then `plan` shows no changes, and the vendor's
contract fixtures match its simulator.

Enable it in a provider package's test suite with one module (see
docs/writing-a-provider.md):

    from reconciler.testing.kit import *  # noqa: F403  (the kit's tests and fixtures)

    CONFORMANCE_PROVIDERS = ["acme"]

`KIT_VERSION` moves with the provider interface: a vendor package can pin the kit
it passed (`assert reconciler.testing.KIT_VERSION == "1"`).
"""

KIT_VERSION = "1"
