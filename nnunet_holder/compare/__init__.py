"""`nnunet-holder compare`: trainers × seeds trained, evaluated on every modality subset, and compared.

`runs` trains and evaluates one run (resumable), `work` is a worker that claims runs one after
another (`claims`: who holds which run on a shared folder; `child`: a training that dies with its
worker), `progress` follows the trainings and writes the status file, `curves` reads the training
curves and their plateaus, `lookup` resolves trainer names, `stats` computes the seed statistics
and the verdicts, `result` computes a comparison's whole result once from its runs, `report`
renders that result as Markdown, CSV, JSON and a heatmap, `dedicated` and `ceiling` are the ceiling
arm, `cli` is the command.
"""
