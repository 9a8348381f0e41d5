"""Windows with their targets: the train / val / test segments a model fits and is scored on
(`segments`), and a segment's windows as an exported graph's inputs (`graph_inputs`). Above `features`
(rows) and `heads` (targets); below everything that trains or scores."""
