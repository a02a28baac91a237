"""All-subset evaluation: per-case metrics, the paper's subset tables, and figures.

`metrics` scores one case per region (Dice, HD95, BraTS empty rules, RFNet ET post-processing),
`tables` turns per-case rows into the 15-subset table (CSV, Markdown, JSON) and model
comparisons, `figures` draws the Dice heatmap and the overlay figure. Nothing is imported here,
so importing the package does not pull in matplotlib.
"""
