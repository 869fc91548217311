"""A small app whose models the content tests register: comments, posts, tickets, notes."""
