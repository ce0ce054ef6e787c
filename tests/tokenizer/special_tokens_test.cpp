// encode(..., parseSpecial): special token texts in the text, as llama.cpp's
// tokenizer_st_partition matches them, for both tokenizers.

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/tokenizer/tokenizer.h"
#include "tests/tokenizer/byte_level_vocab.h"
#include "tests/tokenizer/small_vocab.h"

namespace pagoda {
namespace {

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

// One byte-level token per byte: what the text gives when nothing is special.
std::vector<int32_t> bytes(std::string_view text) {
    return {text.begin(), text.end()};
}

std::unique_ptr<Tokenizer> chatVocabTokenizer() {
    return makeTokenizer(test::makeByteLevelVocab({"x y"}, {},
                                                  {{"<|im_start|>", TokenType::Control},
                                                   {"<|im_end|>", TokenType::Control},
                                                   {"<tool>", TokenType::UserDefined},
                                                   {"<unk>", TokenType::Unknown}}));
}

TEST(SpecialTokens, ControlTokensNeedParseSpecial) {
    const auto tokenizer = chatVocabTokenizer();
    const int32_t start = idOf(*tokenizer, "<|im_start|>");
    const int32_t end = idOf(*tokenizer, "<|im_end|>");
    const std::string text = "<|im_start|>user\nhi<|im_end|>\n";
    EXPECT_EQ(tokenizer->encode(text, false, true),
              (std::vector<int32_t>{start, 'u', 's', 'e', 'r', '\n', 'h', 'i', end, '\n'}));
    EXPECT_EQ(tokenizer->encode(text, false, false), bytes(text));
    EXPECT_EQ(tokenizer->encode(text, false), bytes(text));
    EXPECT_EQ(tokenizer->encode("<unk>", false, true), std::vector<int32_t>{idOf(*tokenizer, "<unk>")});
    EXPECT_EQ(tokenizer->encode("<unk>", false, false), bytes("<unk>"));
}

TEST(SpecialTokens, UserDefinedTokensAlwaysMatch) {
    const auto tokenizer = chatVocabTokenizer();
    const int32_t tool = idOf(*tokenizer, "<tool>");
    EXPECT_EQ(tokenizer->encode("a<tool>b<tool>", false, false), (std::vector<int32_t>{'a', tool, 'b', tool}));
    EXPECT_EQ(tokenizer->encode("<tool>", false, true), std::vector<int32_t>{tool});
}

TEST(SpecialTokens, LongerTextsMatchFirst) {
    const auto tokenizer = makeTokenizer(test::makeByteLevelVocab(
        {"x y"}, {}, {{"ab", TokenType::Control}, {"abc", TokenType::Control}, {"ca", TokenType::Control}}));
    const int32_t ab = idOf(*tokenizer, "ab");
    const int32_t abc = idOf(*tokenizer, "abc");
    // "abc" claims its text before "ca" is looked for, so "ca" never matches here.
    EXPECT_EQ(tokenizer->encode("xabcab", false, true), (std::vector<int32_t>{'x', abc, ab}));
}

TEST(SpecialTokens, BosComesFirst) {
    Vocab vocab = test::makeByteLevelVocab({"x y"}, {}, {{"<|begin_of_text|>", TokenType::Control}});
    vocab.bos = 256;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    EXPECT_EQ(tokenizer->encode("<|begin_of_text|>a", true, true), (std::vector<int32_t>{256, 256, 'a'}));
    EXPECT_EQ(tokenizer->encode("", true, true), std::vector<int32_t>{256});
}

TEST(SpecialTokens, SentencePieceHonoursParseSpecial) {
    const auto tokenizer = makeTokenizer(test::makeSmallVocab({{"a", -1}, {"<", -1}, {"/", -1}, {"s", -1}, {">", -1}}));
    const int32_t a = idOf(*tokenizer, "a");
    EXPECT_EQ(tokenizer->encode("a</s>", false, true), (std::vector<int32_t>{a, test::kSmallEos}));
    EXPECT_EQ(tokenizer->encode("a</s>", false, false).size(), 5u);
}

TEST(SpecialTokens, SentencePieceTextAfterASpecialTokenGetsTheSpacePrefix) {
    Vocab vocab = test::makeSmallVocab({{"\xE2\x96\x81hi", -1}, {"hi", -2}});
    vocab.addSpacePrefix = true;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    const int32_t spaceHi = idOf(*tokenizer, "\xE2\x96\x81hi");
    EXPECT_EQ(tokenizer->encode("hi</s>hi", false, true), (std::vector<int32_t>{spaceHi, test::kSmallEos, spaceHi}));
}

}  // namespace
}  // namespace pagoda
