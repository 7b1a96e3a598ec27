"""Pure, synchronous logic with the clock passed in: tokens, presence, rotations, doorway."""
