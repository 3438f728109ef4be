"""The consent layer: reading and deciding consent, the cookies, the middleware and its pages."""
