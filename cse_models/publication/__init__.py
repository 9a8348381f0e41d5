"""Publication: what a trained graph becomes in the model store — the manifest assembled from the
leaderboards and the training facts, the int8 variant, and the choice between the fitted ensemble and its
best member. The top layer of cse_models: it may use every other layer, and none uses it."""
