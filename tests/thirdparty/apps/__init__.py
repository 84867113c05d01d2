"""Third-party-style apps Bastion has never seen: the oracle for recall and noise (not modelled on the demo)."""
