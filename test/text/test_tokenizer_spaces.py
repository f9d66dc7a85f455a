"""Decoded transcripts have one space between words, whatever sequence of units the recogniser emits."""
from maskspec.text.tokenizer import train_token_list

TEXTS = ["THE CAT SAT ON THE MAT", "A DOG RAN TO THE CAT", "THE MAT IS ON THE DOG", "A CAT IS A CAT"] * 5


def test_lone_word_boundary_piece_is_no_empty_word(tmp_path):
    bpe = train_token_list(TEXTS, str(tmp_path / "bpe"), "bpe", nbpe=16, bpemode="unigram")
    boundary = bpe.token_list.index("\u2581")  # sentencepiece's word-boundary piece alone
    the = bpe.encode("THE")
    cat = bpe.encode("CAT")
    assert bpe.sp.decode_pieces([bpe.token_list[i] for i in the + [boundary] + cat]) != "THE CAT"  # the old way
    assert bpe.decode(the + [boundary] + cat) == "THE CAT"
    assert bpe.decode([boundary] + the + [boundary, boundary] + cat + [boundary]) == "THE CAT"
    assert bpe.decode(bpe.encode("THE CAT SAT")) == "THE CAT SAT"


def test_repeated_space_units_decode_to_one_space(tmp_path):
    char = train_token_list(TEXTS, str(tmp_path / "char"), "char")
    space = char.token_list.index("<space>")
    ids = char.encode("A CAT")
    assert char.decode([space] + ids[:1] + [space, space] + ids[2:] + [space]) == "A CAT"
