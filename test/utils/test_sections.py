"""maskspec.utils.sections: a generated table replaces only its own README section."""
import pytest

from maskspec.utils.sections import markers, replace_section


def test_replaces_only_between_the_markers(tmp_path):
    begin, end = markers("study")
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nprose\n{begin}\nold table\n{end}\n\nmore prose\n", encoding="utf-8")
    replace_section(str(readme), "study", "| a | b |\n")
    assert readme.read_text(encoding="utf-8") == f"# title\n\nprose\n{begin}\n| a | b |\n{end}\n\nmore prose\n"
    replace_section(str(readme), "study", "| c |\n")  # again: the section is found where the last write left it
    assert readme.read_text(encoding="utf-8") == f"# title\n\nprose\n{begin}\n| c |\n{end}\n\nmore prose\n"


@pytest.mark.parametrize("text", ["no markers at all\n", "<!-- study:end -->\n<!-- study:begin -->\n",
                                  "<!-- other:begin -->\n<!-- other:end -->\n"])
def test_a_file_without_the_section_is_an_error_naming_it(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="README.md: no '<!-- study:begin -->'"):
        replace_section(str(readme), "study", "x\n")
    assert readme.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]  # no temporary file left behind
