"""The frameworks' layouts per backend (issue 17); a package, so that test_<backend>.py here and in tests/native/ do not clash."""
