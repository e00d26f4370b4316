"""The real MTConnect recordings in ../shared/fixtures/mtconnect (never copied into the repo).

Where that folder is absent the tests that need it skip with the reason; under CI (CI=true)
they fail instead, so a CI run can never pass without having replayed the recordings.
"""

from __future__ import annotations

from pathlib import Path

from shared.testing.plugin import skip_unless_ci

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "mtconnect"


def fixture(relative: str) -> Path:
    path = FIXTURES / relative
    if not path.is_file():
        reason = f"MTConnect recording {path} is not there (the ../shared folder beside the checkout)"
        skip_unless_ci(reason)
    return path


OKUMA = "shdr/cppagent_demo_okuma.shdr.txt"
AGIE = "agpl-3.0/mtconnectR_GF_Agie_HPM600U_20OCT2015.shdr.log"
DMTCD = "agpl-3.0/mtconnectR_test_dmtcd_mazak.shdr.log"
NIST_TRUNCATED = "agpl-3.0/mtconnectR_nist_testbed_data_truncated.shdr.log"
MAZAK03 = "shdr/nodeagent_Mazak03.shdr.log"
OKUMA_DEVICES = "devices/cppagent_demo_Devices_okuma_mazak.xml"
CURRENT_15 = "streams/mtconnectnet_current_mazak_v1.5.xml"
CURRENT_HCN = "streams/mtconnectnet_current_mazak_HCN001_v2.0.xml"
SAMPLE_UR5E = "streams/nist_dtl_ur5e_sample_cppagent2.0.xml"
