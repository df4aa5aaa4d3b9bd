"""Keras layers shared by the model families; each is registered serializable (package "yt8m")."""
