"""The checks of 00_setup pass on a complete checkout and name the fix when data is missing."""

from mytorch.environment_check import check_bundled_data, check_package, run_checks


def test_all_checks_pass_here():
    failed = [str(result) for result in run_checks() if not result.ok]
    assert not failed


def test_missing_data_names_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("MYTORCH_DATA", str(tmp_path))
    result = check_bundled_data()
    assert not result.ok
    assert str(tmp_path) in result.detail
    assert "git clone" in result.fix


def test_missing_package_names_fix():
    result = check_package("no_such_module_for_the_course", "no-such-package")
    assert not result.ok
    assert "make setup" in result.fix
    assert "FAIL" in str(result)
