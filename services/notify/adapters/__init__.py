"""notify's adapters. `formats`: the wire formats of its channels (e-mail, webhooks), pure."""
