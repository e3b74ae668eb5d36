"""Tests of posekit.models (a package, so that module names may repeat other folders')."""
