"""The read side: the named queries the dashboards run, and the rollups behind them."""
