"""`python -m hwnas.devices.adbd`: serve ADB on loopback (same as `hwnas adb serve`)."""

import sys

from hwnas.devices.adbd.cli import main

sys.exit(main())
