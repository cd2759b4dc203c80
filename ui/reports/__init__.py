"""Static HTML reports (sweep, bench) rendered with plotly."""
