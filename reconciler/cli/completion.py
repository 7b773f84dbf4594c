"""`completion`: the shell's tab-completion script, so no one has to know click's env var.

The script is click's own (`_RECONCILER_COMPLETE=bash_source reconciler` prints the
same); at each tab press the shell runs `reconciler` again with that variable set,
so completion always knows the installed commands and options.
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from reconciler.cli.common import main

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_RECONCILER_COMPLETE"


@main.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Prints the completion script for SHELL (see README: Shell completion).

    \b
    bash: eval "$(reconciler completion bash)"            # in ~/.bashrc
    zsh:  eval "$(reconciler completion zsh)"             # in ~/.zshrc
    fish: reconciler completion fish > ~/.config/fish/completions/reconciler.fish
    """
    completer = get_completion_class(shell)
    if completer is None:  # click ships all three; a future click might not
        raise click.UsageError(f"click offers no completion for {shell}")
    click.echo(completer(main, {}, "reconciler", COMPLETE_VAR).source(), nl=False)
