#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/tokenizer/tokenizer.h"
#include "tests/tokenizer/byte_level_vocab.h"

namespace pagoda {
namespace {

using test::byteLevelCharacter;
using test::makeByteLevelVocab;

std::unique_ptr<Tokenizer> makeTokenizer(Vocab vocab) {
    auto tokenizer = createTokenizer(std::move(vocab));
    EXPECT_TRUE(tokenizer.has_value()) << tokenizer.error().message;
    return tokenizer ? std::move(*tokenizer) : nullptr;
}

int32_t idOf(const Tokenizer& tokenizer, std::string_view text) {
    const auto& tokens = tokenizer.vocab().tokens;
    const auto it = std::ranges::find(tokens, text);
    EXPECT_NE(it, tokens.end()) << text;
    return int32_t(it - tokens.begin());
}

std::vector<int32_t> ids(const Tokenizer& tokenizer, std::initializer_list<std::string_view> texts) {
    std::vector<int32_t> result;
    for (const std::string_view text : texts) {
        result.push_back(idOf(tokenizer, text));
    }
    return result;
}

TEST(ByteLevel, MapsEveryByteToAVisibleCharacter) {
    EXPECT_EQ(byteLevelCharacter(' '), "\xC4\xA0");   // U+0120 "Ġ"
    EXPECT_EQ(byteLevelCharacter('\n'), "\xC4\x8A");  // U+010A "Ċ"
    EXPECT_EQ(byteLevelCharacter('a'), "a");
    EXPECT_EQ(byteLevelCharacter(0xAD), "\xC5\x83");  // U+0143, the last one
    EXPECT_EQ(byteLevelCharacter(0xE9), "\xC3\xA9");  // "é" stands for itself
}

TEST(BpeTokenizer, MergesTheLowestRankFirst) {
    const auto abFirst = makeTokenizer(makeByteLevelVocab({"a b", "b c"}, {"ab", "bc"}));
    EXPECT_EQ(abFirst->encode("abc", false), ids(*abFirst, {"ab", "c"}));
    const auto bcFirst = makeTokenizer(makeByteLevelVocab({"b c", "a b"}, {"ab", "bc"}));
    EXPECT_EQ(bcFirst->encode("abc", false), ids(*bcFirst, {"a", "bc"}));
}

TEST(BpeTokenizer, TiesMergeTheLeftmostPair) {
    const auto tokenizer = makeTokenizer(makeByteLevelVocab({"a a"}, {"aa"}));
    EXPECT_EQ(tokenizer->encode("aaa", false), ids(*tokenizer, {"aa", "a"}));
}

TEST(BpeTokenizer, MergedPairsKeepMergingInsideAWord) {
    const std::string space = byteLevelCharacter(' ');
    const auto tokenizer = makeTokenizer(
        makeByteLevelVocab({space + " t", "h e", space + "t he"}, {space + "t", "he", space + "the"}));
    EXPECT_EQ(tokenizer->encode(" the", false), ids(*tokenizer, {space + "the"}));
    EXPECT_EQ(tokenizer->encode("the", false), ids(*tokenizer, {"t", "he"}));
    // The pre-tokenizer splits " the the" into two words; merges never cross them.
    EXPECT_EQ(tokenizer->encode("the the", false), ids(*tokenizer, {"t", "he", space + "the"}));
}

TEST(BpeTokenizer, BytesBecomeByteLevelTokens) {
    const auto tokenizer = makeTokenizer(makeByteLevelVocab({"x y"}, {}));
    EXPECT_EQ(tokenizer->encode(" ", false), std::vector<int32_t>{' '});
    EXPECT_EQ(tokenizer->encode("\n\t", false), (std::vector<int32_t>{'\n', '\t'}));
    EXPECT_EQ(tokenizer->encode("\xC3\xA9", false), (std::vector<int32_t>{0xC3, 0xA9}));  // "é"
    EXPECT_EQ(tokenizer->encode("\xFF", false), std::vector<int32_t>{0xFF});
    EXPECT_TRUE(tokenizer->encode("", false).empty());
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeWordTokens) {
    // "abc" is a token that no merge builds: Llama 3's pre-tokenizer uses it
    // anyway, GPT-2's does not.
    const auto llama3 = makeTokenizer(makeByteLevelVocab({"x y"}, {"abc"}, {}, "llama-bpe"));
    EXPECT_EQ(llama3->encode("abc", false), ids(*llama3, {"abc"}));
    const auto gpt2 = makeTokenizer(makeByteLevelVocab({"x y"}, {"abc"}));
    EXPECT_EQ(gpt2->encode("abc", false), ids(*gpt2, {"a", "b", "c"}));
}

TEST(BpeTokenizer, Pieces) {
    const std::string space = byteLevelCharacter(' ');
    const auto tokenizer = makeTokenizer(makeByteLevelVocab(
        {space + " h"}, {space + "h"},
        {{"<|endoftext|>", TokenType::Control}, {"<tool>", TokenType::UserDefined}, {"<unk>", TokenType::Unknown}}));
    EXPECT_EQ(tokenizer->piece(idOf(*tokenizer, space + "h"), false), " h");
    EXPECT_EQ(tokenizer->piece(idOf(*tokenizer, space + "h"), true), " h");  // no space prefix to strip
    EXPECT_EQ(tokenizer->piece('\n', false), "\n");
    EXPECT_EQ(tokenizer->piece(0xC3, false), "\xC3");
    EXPECT_EQ(tokenizer->piece(idOf(*tokenizer, "<tool>"), false), "<tool>");
    EXPECT_EQ(tokenizer->piece(idOf(*tokenizer, "<|endoftext|>"), false), "");
    EXPECT_EQ(tokenizer->piece(idOf(*tokenizer, "<unk>"), false), "");
    EXPECT_EQ(tokenizer->piece(-1, false), "");
    EXPECT_EQ(tokenizer->piece(tokenizer->vocab().size(), false), "");
}

TEST(BpeTokenizer, CharactersOutsideTheByteAlphabetDecodeAsThemselves) {
    const auto tokenizer = makeTokenizer(makeByteLevelVocab({"x y"}, {"\xE2\x82\xAC"}));  // "€"
    EXPECT_EQ(tokenizer->piece(idOf(*tokenizer, "\xE2\x82\xAC"), false), "\xE2\x82\xAC");
}

TEST(BpeTokenizer, DecodeInvertsEncode) {
    const std::string space = byteLevelCharacter(' ');
    const auto tokenizer = makeTokenizer(makeByteLevelVocab({space + " h", "h i"}, {space + "h", "hi"}, {},
                                                            "llama-bpe"));
    for (const std::string text : {"hi hi", " hi", "hi  ", "h\xF0\x9F\xA6\x99 \xE6\x88\x91", "\n\tx 123456",
                                   "\xFF\xFE\x80", "it's"}) {
        EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false)), text);
    }
}

TEST(BpeTokenizer, StreamDecoderHoldsSplitCharacters) {
    const auto tokenizer = makeTokenizer(makeByteLevelVocab({"x y"}, {}));
    TokenStreamDecoder decoder(*tokenizer);
    EXPECT_EQ(decoder.push(0xC3), "");
    EXPECT_EQ(decoder.push(0xA9), "\xC3\xA9");
    EXPECT_EQ(decoder.push('!'), "!");
    EXPECT_EQ(decoder.flush(), "");
}

TEST(BpeTokenizer, RejectsBrokenMerges) {
    const auto missing = createTokenizer(makeByteLevelVocab({}, {}));
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().message, "tokenizer.ggml.merges: missing (a 'gpt2' vocab needs its BPE merges)");

    const auto malformed = createTokenizer(makeByteLevelVocab({"a b", "ab"}, {}));
    ASSERT_FALSE(malformed.has_value());
    EXPECT_EQ(malformed.error().message,
              "tokenizer.ggml.merges: entry 1 'ab' is not two symbols separated by a space");
}

TEST(BpeTokenizer, EndOfGeneration) {
    Vocab vocab = makeByteLevelVocab({"x y"}, {},
                                     {{"<|endoftext|>", TokenType::Control}, {"<|im_end|>", TokenType::Control}});
    vocab.eos = 256;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    EXPECT_TRUE(tokenizer->isEndOfGeneration(256));
    EXPECT_TRUE(tokenizer->isEndOfGeneration(257));
    EXPECT_FALSE(tokenizer->isEndOfGeneration('a'));
}

}  // namespace
}  // namespace pagoda
