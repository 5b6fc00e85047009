"""What the hub speaks of S3 itself: SigV4 presigning and Connect's small client."""
