"""Interview preparation: written questions with model answers and self-checks, plus whiteboard coding tasks.

The written questions are :class:`KeyPointsProblem` s: ``interview.q5.check("your answer")``
names the key points your answer still misses. The coding tasks reuse the topic
exercises' checkers (one checker serves both places).
"""
from __future__ import annotations

from .core import KeyPointsProblem

TITLE = "09 · Interview preparation"

# (topic, question, model answer, [(key point, regex), ...]); the first four are the seed lesson's questions
_QUESTIONS = [
    ("CLIP", "How does CLIP work, and what makes it powerful?",
     "CLIP trains two encoders, one for images and one for text, so that both map into one shared embedding space. "
     "Training uses a symmetric contrastive loss over a batch of image–caption pairs: each image should score its own "
     "caption above every other caption in the batch, and vice versa. It was trained on 400 million web pairs, so the "
     "supervision is natural language rather than fixed labels. The power is the shared space: any image can be "
     "compared with any text, which gives zero-shot classification (compare an image with a prompt per class), "
     "retrieval in both directions and transfer to new concepts without fine-tuning; the paper reports 76.2 % "
     "ImageNet zero-shot, on par with a supervised ResNet-50.",
     [("two encoders / towers", r"two encoders|two towers|image encoder.*text encoder"),
      ("a shared embedding space", r"shared (embedding )?space|same (vector|embedding) space"),
      ("the contrastive objective", r"contrastive"),
      ("zero-shot use", r"zero-shot")]),
    ("SigLIP", "What is SigLIP and how does it differ from CLIP?",
     "SigLIP keeps CLIP's two towers but replaces the softmax contrastive loss with a pairwise sigmoid loss: every "
     "image–text pair in the batch is an independent binary decision (match or not), with a learned temperature and "
     "a learned bias. Because no softmax normalises over the batch, a pair's loss does not depend on the other pairs' "
     "scores, the loss can be computed in chunks or across devices without gathering the full similarity matrix, and "
     "it works well at small batch sizes; the paper found its benefit over softmax is largest at small batches and "
     "that gains saturate around 32k. Its probabilities are independent per label (multi-label), not a distribution.",
     [("a sigmoid / binary loss per pair", r"sigmoid|binary"),
      ("no normalisation over the batch", r"no softmax|without (a )?softmax|not normali[sz]e|independent"),
      ("the batch-size advantage", r"small(er)? batch|batch size"),
      ("the learned bias", r"bias")]),
    ("ImageBind", "What is ImageBind and why is it significant?",
     "ImageBind puts six modalities (images, text, audio, depth, thermal and IMU) into one embedding space by "
     "training each new modality only against images, the binding modality, starting from a frozen image–text "
     "model. Images naturally co-occur with the others (video gives image and sound, RGB-D cameras give image and "
     "depth), so no paired data between, say, audio and text is needed. Alignment between modalities never trained "
     "together emerges through the shared image space: audio-to-text retrieval, audio-to-depth retrieval and "
     "embedding arithmetic work zero-shot.",
     [("images as the binding modality", r"bind|against images|to images"),
      ("no pairs between the other modalities", r"never trained together|no paired|without .*pairs|not .*paired"),
      ("emergent alignment", r"emerg"),
      ("the modalities it covers", r"audio|depth|thermal|imu")]),
    ("ColPali", "What is ColPali and when would you use it for document retrieval?",
     "ColPali embeds each document page as an image with a vision-language model and keeps one 128-d vector per "
     "image patch instead of one vector per page; a query keeps one vector per token. Scoring is late interaction "
     "(MaxSim, from ColBERT): each query token takes its most similar patch, and the maxima are summed. Because no "
     "OCR is involved and evidence stays local, it shines on pages where text extraction fails or loses meaning: "
     "charts, tables, complex layouts, scans. The price is storage and compute: about a thousand vectors per page.",
     [("pages embedded as images", r"image|screenshot|visual"),
      ("multi-vector: one vector per patch/token", r"per patch|patch|multi-vector"),
      ("MaxSim / late interaction", r"maxsim|late interaction"),
      ("when: charts, tables, layouts where OCR fails", r"chart|table|layout|ocr")]),
    ("losses", "What does the temperature (logit scale) do in a contrastive loss, and what goes wrong if it is badly set?",
     "Cosine similarities live in [-1, 1]; the logit scale (1/temperature) stretches them before the softmax or "
     "sigmoid. A large scale makes the distribution sharp, so the loss concentrates on the hardest negatives; a small "
     "one makes it flat, so every pair looks alike and gradients are weak. Too large and training becomes unstable "
     "(CLIP clamps the scale at 100); too small and the model cannot express confident matches. That is why CLIP "
     "learns it, starting at 1/0.07, and SigLIP starts at 10.",
     [("it scales the cosine similarities", r"scal|stretch|sharp"),
      ("too high: unstable / over-focused on hard negatives", r"unstable|hard(est)? negative|too (large|high)"),
      ("too low: flat, weak gradients", r"flat|uniform|weak|too (small|low)"),
      ("it is learned / clamped", r"learn|clamp")]),
    ("losses", "Why is CLIP's loss symmetric?",
     "InfoNCE in one direction (image to text) only asks each image to pick its caption among the batch's captions. "
     "The other direction asks each caption to pick its image among the batch's images, which constrains the text "
     "tower and the columns of the similarity matrix. Averaging both makes the space usable for retrieval both ways "
     "and gives each encoder a full set of negatives; dropping one direction leaves one of the two retrieval "
     "directions under-trained.",
     [("both directions: image→text and text→image", r"both (ways|directions)|image.to.text.*text.to.image|rows.*columns"),
      ("each side gets negatives", r"negative"),
      ("retrieval both ways", r"retriev")]),
    ("losses", "Where do the negatives of a contrastive loss come from, and why does batch size matter?",
     "They come from the batch itself: for each image, the other captions in the batch are its negatives (in-batch "
     "negatives), and vice versa. A bigger batch therefore means more and, on average, harder negatives, a tighter "
     "bound on mutual information for InfoNCE and better retrieval; CLIP used 32,768. The softmax normalises over "
     "those negatives, so with small batches the task is too easy. The sigmoid loss depends less on this, which is "
     "why SigLIP does better at small batches.",
     [("in-batch negatives", r"in-batch|other (items|captions|images|pairs) in the batch|from the batch"),
      ("larger batch: more/harder negatives", r"more (and harder )?negatives|harder negatives"),
      ("softmax vs sigmoid dependence on batch", r"sigmoid|siglip")]),
    ("SigLIP", "Why does SigLIP initialise its bias at -10?",
     "At initialisation all similarities are near 0. With N positives and N² − N negatives per batch, almost every "
     "pair is a negative, so a model that starts out saying 'no match' for every pair is already right on nearly all "
     "of them. A bias of -10 (with scale 10) gives σ(−10) ≈ 4.5e-5 for an unrelated pair, so the first steps are not "
     "spent pushing down the huge mass of easy negatives, and the loss starts small and stable; the positives are "
     "learned from there.",
     [("the positive/negative imbalance", r"imbalance|n.?² ?[−-] ?n|mostly negative|almost every pair|far more negatives"),
      ("starts predicting 'no match'", r"no match|close to 0|≈ ?4|near zero|small probability"),
      ("stable first steps", r"stable|first steps|early")]),
    ("CLIP", "Why must embeddings be L2-normalised before comparing them?",
     "Contrastive losses like CLIP's and SigLIP's are computed on cosine similarities of normalised embeddings, so "
     "only the direction of a vector carries meaning. The raw dot product also depends on the vector lengths, which "
     "the training never controlled: items with long vectors would score high for every query. Normalise both sides "
     "(then the dot product is the cosine), or use an inner-product index on normalised vectors.",
     [("losses are trained on cosine similarity", r"cosine"),
      ("vector length leaks into the dot product", r"length|norm|magnitude"),
      ("normalise both sides", r"normali[sz]e")]),
    ("CLIP", "What is prompt ensembling and why does it help zero-shot classification?",
     "Instead of embedding a bare class name, you embed it in several templates ('a photo of a {}', 'a drawing of a "
     "{}', …), normalise each text embedding, average them and normalise again. The class embedding then sits in the "
     "middle of many phrasings, so it depends less on one template's quirks and on the ambiguity of the bare word; "
     "CLIP's paper reports a few points of ImageNet accuracy from ensembling 80 templates. The cost is paid once per "
     "class, not per image.",
     [("several templates per class", r"template|prompt"),
      ("average of normalised embeddings", r"average|mean"),
      ("robust to wording / ambiguity", r"robust|quirk|ambigu|depend less|phrasing"),
      ("cost once per class", r"once per class|per class")]),
    ("CLIP", "How does zero-shot classification work with CLIP?",
     "Write each class as a text prompt, embed the prompts with the text encoder and the image with the image "
     "encoder, normalise, and take the cosine similarity of the image with every class prompt. Scale by the logit "
     "scale and softmax over the classes to get probabilities; the arg-max is the prediction. No labelled training "
     "images are used: the classifier's weights are the text embeddings.",
     [("classes as text prompts", r"prompt|text"),
      ("similarity of the image with every class", r"similarit"),
      ("softmax over classes", r"softmax|arg-?max"),
      ("no labelled training images", r"no (labelled|training)|without (training|labels)")]),
    ("practice", "Why does CLIP do poorly on medical or satellite images, and what would you do about it?",
     "Its training data is web photos with alt text; chest X-rays, histology slides or satellite tiles are rare there, "
     "their visual statistics differ, and their captions use vocabulary CLIP barely saw. Zero-shot accuracy drops "
     "sharply (distribution shift). Options: fine-tune on in-domain image–text pairs (fully, or LiT-style with a "
     "frozen tower, or adapters), use a domain model (e.g. BiomedCLIP for medicine, satellite-specific CLIPs), and "
     "always evaluate on a labelled in-domain set before trusting it.",
     [("training distribution: web photos", r"web|internet|natural photos"),
      ("distribution shift / rare domain", r"shift|rare|out of distribution|differ"),
      ("fine-tune on in-domain pairs", r"fine-?tun"),
      ("evaluate in-domain", r"evaluat|benchmark|labelled")]),
    ("practice", "Why not use CLIP's text encoder for text-to-text search?",
     "CLIP's text tower was trained only to match captions with images, on short alt-text with a 77-token limit. It "
     "learned what makes a caption visually distinctive, not paraphrase or topical similarity between passages. "
     "Dedicated sentence models (SBERT, E5, BGE; the course uses all-MiniLM-L6-v2) are trained on text pairs for "
     "exactly that, and notebook 07 measures the gap. Use CLIP for image–text, a text model for text–text, and fuse "
     "them.",
     [("trained for image–text, not text–text", r"image|caption"),
      ("short context", r"77|short"),
      ("dedicated sentence models", r"sbert|e5|bge|minilm|sentence"),
      ("measured / fuse both", r"measur|fuse|hybrid")]),
    ("losses", "What is LiT (locked-image tuning), and why freeze one tower?",
     "LiT trains a contrastive image–text model with a pretrained tower locked (frozen) and only the other tower "
     "learning to meet it. The frozen tower keeps its representation (trained on far more data), training is cheaper "
     "(no gradients through it, and its outputs can be cached) and the learned tower aligns to a stable target. The "
     "course's checkpoints do this with a frozen all-MiniLM-L6-v2 text tower and small trained vision, audio and page "
     "towers.",
     [("one pretrained tower frozen/locked", r"frozen|locked|freez"),
      ("the other learns to meet it", r"other tower|only the other|align"),
      ("cheaper: no gradients, cached outputs", r"cheap|cache|no gradient"),
      ("keeps the pretrained representation", r"keep|preserv|pretrained")]),
    ("ColPali", "What do MaxSim scoring and ColPali storage cost?",
     "One query–page score computes Tq × P dot products of dimension D (2·Tq·P·D FLOPs): with 30 query tokens, about "
     "1,030 patches and 128 dims that is ~7.9 MFLOP per page, ~7.9 GFLOP per query over 1,000 pages, so it is a "
     "matrix-multiply workload, fast on a GPU and chunked on a CPU. Storage is P × D numbers per page: ~263 KB in "
     "float16, ~170× a single 384-d float32 vector. At millions of pages that drives the design.",
     [("compute 2·Tq·P·D", r"tq|2 ?[·x*] ?tq|flop"),
      ("storage per page (vectors × dims × bytes)", r"storage|bytes|kb|kib"),
      ("comparison with single-vector", r"single|one vector|×|times")]),
    ("ColPali", "How can you cut ColPali's storage without losing much quality?",
     "Store fewer, smaller vectors: float16 or int8 instead of float32; binarise (1 bit per dimension, Hamming or "
     "binary dot products) for a 32× cut with a re-ranking stage; pool similar patch vectors hierarchically (pool "
     "factor 2–3 keeps most of the quality, notebook 06 measures it); drop background/blank patches; and use a "
     "two-stage pipeline where a cheap single-vector or binary index retrieves candidates and full MaxSim re-ranks "
     "them.",
     [("lower precision / quantise", r"float16|fp16|int8|quanti"),
      ("binarise", r"binar|1 bit"),
      ("token pooling", r"pool"),
      ("two-stage re-ranking", r"re-?rank|two-stage|candidates")]),
    ("binding", "Why does ImageBind bind every modality to images rather than to text?",
     "Because images are the modality that naturally co-occurs with all the others at scale: video pairs frames with "
     "audio, RGB-D sensors pair images with depth, egocentric video pairs frames with IMU. Text rarely comes with "
     "depth or IMU data. Since an image–text model already links images to language, binding X to images gives X a "
     "link to text for free, without collecting a single (X, text) pair.",
     [("images co-occur with other modalities", r"co-?occur|video|naturally paired|rgb-?d"),
      ("image–text model already links to language", r"image.text|clip|language"),
      ("no (X, text) pairs needed", r"without|no .*pair|for free")]),
    ("binding", "Why does audio-to-text retrieval work in ImageBind even though no audio–text pairs were used?",
     "Audio is trained to land near the image it co-occurs with; the image embedding, from a frozen image–text model, "
     "already lies near the text describing it. Alignment is roughly transitive through the shared image space: "
     "audio ≈ image ≈ text. It works only as far as the image tower stays fixed (unfreezing it lets the space drift "
     "away from text) and as far as the sound is visually grounded; notebook 05 measures both.",
     [("audio trained against images", r"against images|near the image|to images"),
      ("frozen image–text space already aligned with text", r"frozen|already"),
      ("transitivity through the shared space", r"transitiv|through the (shared )?(image )?space|≈"),
      ("limits: unfreezing / grounding", r"unfreez|drift|ground")]),
    ("search", "When does hybrid (multi-modal) search beat a single modality?",
     "When the modalities carry complementary evidence and their errors are not the same: text catches exact names, "
     "numbers and rare terms the image model misses; the image model catches visual attributes the text never "
     "mentions, or documents with no text at all. Fusion helps when both retrievers are reasonably good and "
     "disagree; if one is much worse, a naive equal weight can hurt, so tune the weight (or use RRF) on labelled "
     "queries, as notebook 07 does.",
     [("complementary evidence", r"complement|different (errors|evidence)|disagree"),
      ("examples of each side's strength", r"name|number|rare|visual|no text"),
      ("tune the weight on labelled queries", r"tune|weight|labelled")]),
    ("search", "Weighted score fusion or reciprocal rank fusion: how do you choose?",
     "Weighted fusion adds the retrievers' scores after normalising them (min-max, z-score); it uses how confident "
     "each retriever is, but depends on score calibration and needs the weight tuned. RRF ignores scores and sums "
     "1/(k + rank) over the rankings; it is robust to incomparable scales and needs almost no tuning (k = 60), but "
     "throws away score gaps. Start with RRF when scores are not comparable; use weighted fusion when you can "
     "calibrate and tune on labelled queries.",
     [("weighted fusion uses normalised scores", r"normali[sz]|min-?max|z-score"),
      ("RRF uses ranks only: 1/(k + rank)", r"1 ?/ ?\(k ?\+ ?rank\)|rank"),
      ("trade-off: calibration vs robustness", r"calibrat|robust|scale")]),
    ("search", "What are the two bugs in the seed lesson's hybrid index?",
     "First, it searches each FAISS index for its top results, which come back sorted by score, and then adds the two "
     "score lists position by position: position i of the text list and of the image list are usually different "
     "documents, so scores of unrelated documents are summed and the ids are wrong. Second, documents without an "
     "image (or text) get a zero placeholder vector, which scores exactly 0 for every query instead of being "
     "excluded. The fix: per-modality indexes keyed by document id, fusion aligned by id, and no placeholders.",
     [("sorted lists added elementwise / by position", r"sorted|position|elementwise"),
      ("different documents mixed", r"different documents|unrelated|wrong (ids|documents)"),
      ("zero vectors for missing modalities", r"zero|placeholder"),
      ("fix: align by document id", r"by (document )?id|keyed")]),
    ("search", "How should a search index handle a document that lacks a modality?",
     "Leave it out of that modality's index entirely, and keep indexes keyed by document id. At query time each "
     "modality scores only the documents it has; fusion then either uses only the available evidence (renormalising "
     "the weights over present modalities) or ranks with RRF, where a missing list simply contributes nothing. Never "
     "insert zero vectors: they are real points that get real scores.",
     [("not in that modality's index", r"leave it out|not (stored|indexed|in)|exclude|only the documents it has"),
      ("fusion over available modalities", r"available|present|renormali"),
      ("no zero vectors", r"zero")]),
    ("scale", "Flat, IVF, HNSW or IVF-PQ: how do you choose a FAISS index?",
     "Flat is exact and needs no training; fine up to about a million vectors if latency allows. IVF clusters the "
     "vectors and searches a few clusters (nprobe trades recall for speed); it needs training and suits large static "
     "collections. HNSW is a graph with excellent recall/latency and no training, but costs extra memory per vector "
     "and slow builds. IVF-PQ compresses vectors to a few bytes, the choice when memory is the limit, at some recall "
     "cost. Measure recall@k against flat at your target latency, as notebook 08 does.",
     [("flat: exact", r"exact"),
      ("IVF: clusters and nprobe", r"cluster|nprobe|nlist"),
      ("HNSW: graph, memory", r"graph|hnsw"),
      ("PQ: compression for memory", r"compress|pq|bytes"),
      ("measure recall vs latency", r"recall")]),
    ("scale", "How do you train a contrastive model across many GPUs?",
     "Each rank embeds its local batch; to get the global batch's negatives, features are all-gathered so every rank "
     "computes logits against all N·world texts. The gather must let gradients flow to the local features (gather "
     "with gradient, or compute the local rows only: 'local loss', which gives the same gradients with less memory). "
     "Without gradients through the gathered copies, the result changes. SigLIP can avoid the all-gather by passing "
     "text features around a ring of neighbours, chunk by chunk.",
     [("all-gather features for global negatives", r"all-?gather|global"),
      ("gradients through the gather", r"gradient"),
      ("local loss saves memory", r"local.?loss|memory"),
      ("SigLIP ring exchange", r"ring|neighbo")]),
    ("losses", "How can the sigmoid loss be computed without materialising the N×N matrix?",
     "Each pair's term is independent, so the sum can be accumulated over blocks: score all images against a chunk "
     "of texts, add the chunk's -log σ terms (positives sit where the chunk's rows meet their own texts), and move to "
     "the next chunk. Peak memory is N × chunk instead of N², and the result is identical. Across devices the chunks "
     "are the neighbours' text features passed around a ring.",
     [("independent pair terms", r"independent"),
      ("accumulate over chunks/blocks", r"chunk|block"),
      ("memory N × chunk", r"memory|n ?× ?chunk"),
      ("identical result", r"identical|same (result|value)|exact")]),
    ("practice", "Why must preprocessing match the checkpoint?",
     "A vision tower is trained on inputs resized, cropped and normalised one particular way (mean/std, resolution, "
     "interpolation). Different constants shift every input away from what the first layer expects, and nothing "
     "fails loudly: accuracy silently drops. Always use the transform the library returns with the weights "
     "(open_clip's preprocess, transformers' processor); notebook 03 measures the drop from the wrong normalisation.",
     [("trained with specific resize/normalisation", r"mean|std|normali|resiz"),
      ("silent failure", r"silent|no error|nothing fails"),
      ("use the checkpoint's own transform", r"processor|preprocess|transform")]),
    ("SigLIP", "Why does SigLIP need padding=\"max_length\" for its text inputs?",
     "SigLIP's text tower was trained on text padded to a fixed length (64 tokens) and its pooled embedding is read "
     "from the last position, which during training was a pad token. Padding to the longest item in the batch moves "
     "that position and feeds the model inputs unlike its training ones, so embeddings shift and retrieval drops "
     "without any error. Use the processor with padding='max_length', as the model card says; notebook 03 measures "
     "the drop.",
     [("trained on fixed-length padding", r"fixed|64|max.?length"),
      ("pooling reads a position affected by padding", r"last (position|token)|pool"),
      ("silent drop", r"drop|shift|silent")]),
    ("SigLIP", "Sigmoid or softmax probabilities: what is the difference, and when do you want which?",
     "Softmax turns one image's logits into a distribution over the labels: they compete and sum to one, which suits "
     "exactly-one-label classification but always names a winner, even when no label fits. Sigmoid gives each label "
     "an independent probability: several can be high (multi-label) or all low (none applies), which suits tagging, "
     "retrieval thresholds and open-set questions. SigLIP is trained for the sigmoid; applying a softmax to its "
     "logits discards the bias's calibration.",
     [("softmax: labels compete, sum to one", r"sum(s)? to (one|1)|compete|distribution"),
      ("sigmoid: independent per label", r"independent"),
      ("multi-label / none applies", r"multi-label|none|several"),
      ("pick by task", r"suits|when|tagging|threshold")]),
    ("evaluation", "Recall@k, nDCG@k or mAP: which metric when?",
     "Recall@k asks whether the relevant items are in the top k: right for a retriever feeding a re-ranker or an LLM "
     "with k slots. nDCG@k rewards putting the most relevant items first and handles graded relevance (highly vs "
     "partly relevant). mAP averages precision at each relevant item over the whole ranking: good when every "
     "relevant item matters and relevance is binary. Report the one that matches how results are consumed, with k "
     "set to what the user or the next stage actually sees.",
     [("recall@k: in the top k", r"top.?k"),
      ("nDCG: graded relevance, position", r"graded|position|first"),
      ("mAP: precision over the ranking", r"precision"),
      ("match the metric to use", r"consum|next stage|user|match")]),
    ("CLIP", "What is the modality gap?",
     "In CLIP-like models, image embeddings and text embeddings occupy two separate narrow cones of the sphere: even "
     "matching pairs have cosine similarity far below 1 (often 0.2–0.4), and any image is closer to other images than "
     "to its caption. It comes from initialisation and the contrastive loss's temperature. It does not hurt ranking "
     "within one modality pair, but it matters for thresholds, for mixing image and text embeddings in one index, "
     "and for embedding arithmetic.",
     [("separate regions / cones", r"cone|separate|region"),
      ("matching pairs far from cosine 1", r"below 1|far|0\.[1-4]"),
      ("consequence: thresholds, mixing, arithmetic", r"threshold|mix|arithmetic|one index")]),
    ("CLAP", "How does CLAP turn audio into something a transformer can embed?",
     "Audio is loaded, mixed to mono and resampled to the model's rate (48 kHz for LAION's CLAP), then cut or padded to "
     "a fixed duration (about 10 s; longer clips are chunked or, in the 'fused' variants, summarised with a global "
     "view plus random local crops). A short-time Fourier transform and a mel filter bank give a log-mel "
     "spectrogram, an image-like time–frequency array that the audio encoder (HTSAT, a Swin-style transformer) "
     "embeds; a projection maps it into the space shared with the text encoder.",
     [("mono and resampling", r"mono|resampl"),
      ("fixed length: pad/truncate/chunk", r"pad|truncat|chunk|fixed"),
      ("log-mel spectrogram", r"log-?mel|spectrogram"),
      ("projection into the shared space", r"projection|shared")]),
    ("practice", "How do you fine-tune CLIP on a new domain without destroying its zero-shot ability?",
     "Keep the update small and anchored: a low learning rate with warm-up, few epochs, and freeze most layers (or "
     "one whole tower, LiT-style) or train adapters/LoRA; keep the contrastive loss and in-domain image–text pairs; mix "
     "in general data; and interpolate the fine-tuned weights with the original ones (WiSE-FT), which recovers "
     "robustness. Measure both in-domain accuracy and a general zero-shot benchmark before and after.",
     [("small, anchored updates", r"low learning rate|small|freez|lora|adapter"),
      ("weight interpolation / mixing general data", r"interpolat|wise-?ft|mix"),
      ("measure both in-domain and general", r"both|before and after|general")]),
    ("losses", "What are hard negatives, and how do they help contrastive training?",
     "Hard negatives are non-matching items that the model currently scores close to the positive: a caption that "
     "differs from the right one by one attribute, a near-duplicate image. Random in-batch negatives are mostly easy, "
     "so the gradient signal fades as training goes on; adding mined hard negatives (from an index, or by building "
     "batches of similar items) keeps the task informative and teaches fine distinctions. Too hard, and false "
     "negatives (actually matching items) inject label noise.",
     [("similar but non-matching", r"close|similar|near"),
      ("easy random negatives give little signal", r"easy|little signal|fades"),
      ("mining", r"min(e|ing)"),
      ("false negatives risk", r"false negative")]),
]

_module = globals()
QUESTIONS: list[KeyPointsProblem] = []
for _i, (_topic, _question, _answer, _points) in enumerate(_QUESTIONS, start=1):
    _problem = KeyPointsProblem(var=f"answer_q{_i}", prompt=_question, question=_question, model_answer=_answer,
                                key_points=list(_points), hints=[f"Topic: {_topic}. A good answer covers "
                                                                 f"{len(_points)} key points."])
    _problem.topic = _topic
    _module[f"q{_i}"] = _problem
    QUESTIONS.append(_problem)


def coding_tasks():
    """Five whiteboard tasks, checked by the topic exercises' checkers (one checker serves both)."""
    from . import ex01, ex02, ex06, ex07

    return [ex02.q2, ex02.q3, ex01.q2, ex06.q2, ex07.q3]


PROBLEMS = QUESTIONS
