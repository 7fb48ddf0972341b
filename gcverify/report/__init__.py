"""Where rows go: the one Row type, the table, JSON report files, baselines and graph pictures."""
