"""The ``lucidlink`` command line for people: files, transfers, Connect and credentials.

One module per group of commands: :mod:`~lucidlink.commands.urls` (what a command's
arguments name), :mod:`~lucidlink.commands.credentials` (token, hub and profiles),
:mod:`~lucidlink.commands.session` (one daemon per run), :mod:`~lucidlink.commands.stores`
(local and filespace trees behind one interface), :mod:`~lucidlink.commands.engine`
(parallel transfers with progress and clean interruption),
:mod:`~lucidlink.commands.transfers`, :mod:`~lucidlink.commands.listing`,
:mod:`~lucidlink.commands.connect` and :mod:`~lucidlink.commands.app` (the click app).
"""
