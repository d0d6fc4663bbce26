"""After the call: filling in what the platform left out, then writing the call into the business's systems."""
