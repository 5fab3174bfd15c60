"""Providers behind one small interface (see base.py), and the router that picks among them."""
