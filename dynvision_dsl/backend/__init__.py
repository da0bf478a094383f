"""The back end: step graphs (torch.fx), the passes over them and the manager that runs them."""
