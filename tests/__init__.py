"""edgekit's tests; the folders mirror the package (tests/<subpackage>/test_<module>.py), end-to-end suites live in tests/e2e/."""
