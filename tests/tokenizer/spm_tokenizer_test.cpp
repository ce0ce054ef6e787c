#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/tokenizer/tokenizer.h"
#include "tests/tokenizer/small_vocab.h"

namespace pagoda {
namespace {

using test::byteToken;
using test::makeSmallVocab;

std::unique_ptr<Tokenizer> makeTokenizer(Vocab vocab) {
    auto tokenizer = createTokenizer(std::move(vocab));
    EXPECT_TRUE(tokenizer.has_value());
    return std::move(*tokenizer);
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

TEST(SpmTokenizer, MergesTheHighestScoringPairFirst) {
    const auto tokenizer = makeTokenizer(makeSmallVocab({{"a", -10}, {"b", -10}, {"c", -10}, {"ab", -2}, {"bc", -1}}));
    EXPECT_EQ(tokenizer->encode("abc", false), ids(*tokenizer, {"a", "bc"}));
}

TEST(SpmTokenizer, TiesMergeTheLeftmostPair) {
    const auto tokenizer = makeTokenizer(makeSmallVocab({{"a", -10}, {"b", -10}, {"c", -10}, {"ab", -1}, {"bc", -1}}));
    EXPECT_EQ(tokenizer->encode("abc", false), ids(*tokenizer, {"ab", "c"}));
}

TEST(SpmTokenizer, MergedPairsKeepMerging) {
    const auto tokenizer = makeTokenizer(makeSmallVocab(
        {{"a", -10}, {"b", -10}, {"c", -10}, {"d", -10}, {"ab", -3}, {"cd", -2}, {"abcd", -1}}));
    EXPECT_EQ(tokenizer->encode("abcd", false), ids(*tokenizer, {"abcd"}));
    EXPECT_EQ(tokenizer->encode("abcab", false), ids(*tokenizer, {"ab", "c", "ab"}));
}

TEST(SpmTokenizer, OnlyPairsOfSymbolsMerge) {
    // "abc" is a token, but neither "ab" nor "bc" is, so it is never formed.
    const auto tokenizer = makeTokenizer(makeSmallVocab({{"a", -10}, {"b", -10}, {"c", -10}, {"abc", -1}}));
    EXPECT_EQ(tokenizer->encode("abc", false), ids(*tokenizer, {"a", "b", "c"}));
}

TEST(SpmTokenizer, SpacesBecomeMetaSpaces) {
    Vocab vocab = makeSmallVocab({{"\xE2\x96\x81", -5}, {"hi", -2}, {"\xE2\x96\x81hi", -1}});
    vocab.addSpacePrefix = true;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    EXPECT_EQ(tokenizer->encode("hi  hi", false),
              ids(*tokenizer, {"\xE2\x96\x81hi", "\xE2\x96\x81", "\xE2\x96\x81hi"}));
    EXPECT_EQ(tokenizer->encode("hi", true),
              (std::vector<int32_t>{test::kSmallBos, idOf(*tokenizer, "\xE2\x96\x81hi")}));
}

TEST(SpmTokenizer, UnknownCharactersFallBackToBytes) {
    const auto tokenizer = makeTokenizer(makeSmallVocab({{"h", -1}}));
    const std::vector<int32_t> expected = {idOf(*tokenizer, "h"), byteToken(0xF0), byteToken(0x9F), byteToken(0xA6),
                                           byteToken(0x99), byteToken(0xE6), byteToken(0x88), byteToken(0x91)};
    EXPECT_EQ(tokenizer->encode("h\xF0\x9F\xA6\x99\xE6\x88\x91", false), expected);  // "h🦙我"
}

TEST(SpmTokenizer, MissingByteTokensFallBackToUnk) {
    const auto tokenizer = makeTokenizer(makeSmallVocab({{"h", -1}}, /*withByteTokens=*/false));
    const std::vector<int32_t> expected = {idOf(*tokenizer, "h"), test::kSmallUnk, test::kSmallUnk};
    EXPECT_EQ(tokenizer->encode("h\xC3\xA9", false), expected);  // "hé"
}

TEST(SpmTokenizer, EmptyTextHasNoTokens) {
    Vocab vocab = makeSmallVocab({{"\xE2\x96\x81", -1}});
    vocab.addSpacePrefix = true;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    EXPECT_TRUE(tokenizer->encode("", false).empty());
    EXPECT_EQ(tokenizer->encode("", true), std::vector<int32_t>{test::kSmallBos});
    EXPECT_EQ(tokenizer->decode(std::vector<int32_t>{}), "");
}

TEST(SpmTokenizer, OnlySpaces) {
    Vocab vocab = makeSmallVocab({{"\xE2\x96\x81", -1}, {"\xE2\x96\x81\xE2\x96\x81", -2}});
    vocab.addSpacePrefix = true;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    const int32_t one = idOf(*tokenizer, "\xE2\x96\x81");
    const int32_t two = idOf(*tokenizer, "\xE2\x96\x81\xE2\x96\x81");
    EXPECT_EQ(tokenizer->encode(" ", false), std::vector<int32_t>{two});
    EXPECT_EQ(tokenizer->encode("  ", false), (std::vector<int32_t>{two, one}));
    EXPECT_EQ(tokenizer->decode(tokenizer->encode("  ", false)), "  ");
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(" ", true)), " ");
}

TEST(SpmTokenizer, Pieces) {
    Vocab vocab = makeSmallVocab({{"\xE2\x96\x81hi\xE2\x96\x81there", -1}});
    vocab.addSpacePrefix = true;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    const int32_t hi = idOf(*tokenizer, "\xE2\x96\x81hi\xE2\x96\x81there");
    EXPECT_EQ(tokenizer->piece(hi, false), " hi there");
    EXPECT_EQ(tokenizer->piece(hi, true), "hi there");
    EXPECT_EQ(tokenizer->piece(byteToken(0x0A), false), "\n");
    EXPECT_EQ(tokenizer->piece(byteToken(0xFF), false), "\xFF");
    EXPECT_EQ(tokenizer->piece(test::kSmallBos, false), "");
    EXPECT_EQ(tokenizer->piece(test::kSmallEos, false), "");
    EXPECT_EQ(tokenizer->piece(test::kSmallUnk, false), "");
    EXPECT_EQ(tokenizer->piece(-1, false), "");
    EXPECT_EQ(tokenizer->piece(tokenizer->vocab().size(), false), "");
}

TEST(SpmTokenizer, LeadingSpaceStaysWithoutSpacePrefix) {
    const auto tokenizer = makeTokenizer(makeSmallVocab({{"\xE2\x96\x81hi", -1}}));
    EXPECT_EQ(tokenizer->piece(idOf(*tokenizer, "\xE2\x96\x81hi"), true), " hi");
}

TEST(SpmTokenizer, DecodeInvertsEncode) {
    Vocab vocab = makeSmallVocab({{"\xE2\x96\x81", -5}, {"h", -5}, {"i", -5}, {"hi", -2}, {"\xE2\x96\x81hi", -1}});
    vocab.addSpacePrefix = true;
    const auto tokenizer = makeTokenizer(std::move(vocab));
    for (const std::string text : {"hi hi", " hi", "hi  ", "h\xF0\x9F\xA6\x99 \xE6\x88\x91", "\n\tx", "\xFF\xFE\x80"}) {
        EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, false)), text);
        EXPECT_EQ(tokenizer->decode(tokenizer->encode(text, true)), text);
    }
}

TEST(SpmTokenizer, EndOfGeneration) {
    Vocab vocab = makeSmallVocab({{"<|eot_id|>", 0}, {"hi", -1}});
    vocab.tokens.push_back("<|im_end|>");
    vocab.scores.push_back(0);
    vocab.types.push_back(TokenType::Control);
    const auto tokenizer = makeTokenizer(std::move(vocab));
    EXPECT_TRUE(tokenizer->isEndOfGeneration(test::kSmallEos));
    EXPECT_TRUE(tokenizer->isEndOfGeneration(idOf(*tokenizer, "<|im_end|>")));
    EXPECT_FALSE(tokenizer->isEndOfGeneration(idOf(*tokenizer, "<|eot_id|>")));  // Normal, plain text
    EXPECT_FALSE(tokenizer->isEndOfGeneration(test::kSmallBos));
    EXPECT_FALSE(tokenizer->isEndOfGeneration(idOf(*tokenizer, "hi")));
    EXPECT_FALSE(tokenizer->isEndOfGeneration(-1));
    EXPECT_FALSE(tokenizer->isEndOfGeneration(tokenizer->vocab().size()));
}

TEST(SpmTokenizer, SpecialTokensInTextArePlainText) {
    const auto tokenizer = makeTokenizer(makeSmallVocab({{"<", -1}, {"s", -1}, {">", -1}}));
    EXPECT_EQ(tokenizer->encode("<s>", false), ids(*tokenizer, {"<", "s", ">"}));
}

TEST(CreateTokenizer, RejectsOtherModels) {
    Vocab vocab = makeSmallVocab({});
    vocab.model = "t5";
    const auto tokenizer = createTokenizer(std::move(vocab));
    ASSERT_FALSE(tokenizer.has_value());
    EXPECT_EQ(tokenizer.error().message, "tokenizer model 't5' is not supported yet");
}

// The definition, rescanning after every merge: O(n^2), but obviously right.
std::vector<int32_t> encodeNaively(const Vocab& vocab, std::string_view text) {
    std::map<std::string, int32_t, std::less<>> idByText;
    for (size_t id = 0; id < vocab.tokens.size(); ++id) {
        idByText[vocab.tokens[id]] = int32_t(id);
    }
    std::vector<std::string> symbols;
    for (const char c : text) {
        symbols.emplace_back(1, c);
    }
    for (;;) {
        ptrdiff_t best = -1;
        float bestScore = 0;
        for (size_t i = 0; i + 1 < symbols.size(); ++i) {
            const auto it = idByText.find(symbols[i] + symbols[i + 1]);
            if (it != idByText.end() && (best < 0 || vocab.scores[size_t(it->second)] > bestScore)) {
                best = ptrdiff_t(i);
                bestScore = vocab.scores[size_t(it->second)];
            }
        }
        if (best < 0) {
            break;
        }
        symbols[size_t(best)] += symbols[size_t(best) + 1];
        symbols.erase(symbols.begin() + best + 1);
    }
    std::vector<int32_t> result;
    for (const std::string& symbol : symbols) {
        const auto it = idByText.find(symbol);
        result.push_back(it != idByText.end() ? it->second : byteToken(uint8_t(symbol[0])));
    }
    return result;
}

TEST(SpmTokenizer, MatchesNaiveMergingOnRandomVocabs) {
    std::mt19937 random(1234);
    for (int round = 0; round < 20; ++round) {
        // Tokens grow from pairs of existing tokens, so that merge paths
        // exist; scores come from a small set, so that ties happen.
        std::vector<std::string> texts = {"a", "b", "c", "d"};
        std::vector<std::pair<std::string, float>> pieces;
        for (const std::string& text : texts) {
            pieces.emplace_back(text, -100.0f);
        }
        while (pieces.size() < 40) {
            std::string text = texts[random() % texts.size()] + texts[random() % texts.size()];
            if (std::ranges::find(texts, text) == texts.end()) {
                texts.push_back(text);
                pieces.emplace_back(std::move(text), -float(random() % 8));
            }
        }
        const Vocab vocab = makeSmallVocab(pieces);
        const auto tokenizer = makeTokenizer(vocab);
        for (int sample = 0; sample < 50; ++sample) {
            std::string text;
            const size_t length = random() % 40;
            for (size_t i = 0; i < length; ++i) {
                text += "abcde"[random() % 5];
            }
            ASSERT_EQ(tokenizer->encode(text, false), encodeNaively(vocab, text)) << text;
        }
    }
}

}  // namespace
}  // namespace pagoda
