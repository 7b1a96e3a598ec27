"""The door's lights, buzzer, presence sensor and button (gpiozero is imported only in board.py)."""
