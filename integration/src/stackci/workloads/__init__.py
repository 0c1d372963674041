"""The model suite: the manifest, where models come from, how random weights and
transformers are generated, preparation (inputs, reference outputs) and the comparison."""
