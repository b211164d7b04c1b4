"""End-to-end tests: the ``redmine`` fixture (a real Redmine on loopback, ``e2e.redmine``)
is registered in tests/conftest.py, so this folder shares one Redmine with the others."""
