"""Product reviews with comments, classified for sentiment as they are saved."""
