"""Pictures: network drawings (``network``), search plots (``search_plots``), label colours and predictions."""
