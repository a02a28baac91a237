"""`nnunet-holder compare`: trainers × seeds trained, evaluated on every modality subset, and compared.

`runs` trains and evaluates (resumable), `curves` reads the training curves and their plateaus,
`stats` computes the seed statistics and the verdict, `report` writes Markdown, CSV, JSON and a
heatmap, `cli` is the command.
"""
