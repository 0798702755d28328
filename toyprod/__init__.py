"""Toyprod: the demo production service that OpsSeer watches, with chaos modes and a load generator."""
