"""The pure rule matching a DICOM InstitutionName to a site."""

from studyapp.sites.institutions import clean_aliases, institution_key, match_site


def test_key_ignores_case_and_spacing():
    assert institution_key("  BAPTIST   Med\tCTR ") == institution_key("baptist med ctr") == "baptist med ctr"
    assert institution_key(None) == institution_key("   ") == ""


def test_match_site():
    aliases = {1: ["Baptist Med Ctr", "Baptist Medical Center"], 2: ["North Clinic"]}
    assert match_site("BAPTIST MED  CTR", aliases) == 1
    assert match_site("north clinic", aliases) == 2
    assert match_site("South Clinic", aliases) is None
    assert match_site("", aliases) is None and match_site(None, aliases) is None


def test_clean_aliases_trims_drops_duplicates_and_refuses_names_of_other_sites():
    cleaned, problems = clean_aliases([" North  Clinic ", "north clinic", "", "Old Name"],
                                      taken={"old name": "south"})
    assert cleaned == ["North Clinic"]
    assert [(p.value, p.code) for p in problems] == [("Old Name", "alias_taken")]
    assert "south" in problems[0].message


def test_clean_aliases_refuses_bad_values():
    cleaned, problems = clean_aliases([3, "x" * 121, "a\x00b"], taken={})
    assert cleaned == [] and [p.code for p in problems] == ["not_text", "too_long", "control_characters"]
