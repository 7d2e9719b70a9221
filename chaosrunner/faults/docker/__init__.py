"""Docker faults: container lifecycle, networks, CPU and memory stress.

One package because the kinds share a lot: the Engine adapter (``client``,
the only module that imports the docker SDK), container selection and its
safety rules (``selection``), host-side access to a container's process and
network namespace (``hostaccess``), and the watchdog that reverts a fault by
itself if chaosrunner dies (``watchdog``). The kinds live in ``lifecycle``,
``network`` and ``stress``; importing this package registers them, and costs
no docker import (the SDK is loaded the first time a fault talks to dockerd).

See docs/faults/docker.md for every kind, its params, its revert and its
dead-man's switch.
"""

# Importing the kind modules registers their kinds (the registry imports this package).
import chaosrunner.faults.docker.lifecycle
import chaosrunner.faults.docker.network
import chaosrunner.faults.docker.stress  # noqa: F401
