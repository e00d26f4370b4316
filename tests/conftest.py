import pytest

pytest_plugins = ["shared.testing.plugin"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under */integration/ or */system/ needs real infrastructure.
    for item in items:
        path = item.path.as_posix()
        if "/integration/" in path or "/system/" in path:
            item.add_marker(pytest.mark.integration)
