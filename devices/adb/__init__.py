"""The ADB client adapter (`adb://`) and the parsing of what a phone prints."""
