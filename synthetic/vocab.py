"""Word lists and sentence templates for ``synthetic.generator``'s small talk, replies and side sources.

Templates are ``str.format`` strings whose fields name a pool below (``{dish}``, ``{city}``); a
trailing digit draws another value from the same pool (``{dish2}``), a leading capital capitalises
the value (``{Who}``), ``a_`` prepends the indefinite article (``{a_product}``) and ``your_``
turns the user's "my ..." into the assistant's "your ..." (``{your_recipient}``).

Nothing the user says here may read as a first-person fact about the user ("I live in ...",
"I love ...", "my dog Rex", "my wife ..."): the rule extractor runs on these texts and every
extraction from them would count as invented. Other people's facts are fine.
"""

from __future__ import annotations


def _split(text: str, sep: str = ",") -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(sep) if part.strip())


def _alts(text: str) -> tuple[str, ...]:
    """Alternative sentences, written one after another with " | " between them."""
    return _split(text, "|")


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """``text ~ subject`` alternatives: a template and the noun phrase a later turn can refer back to."""
    out = []
    for alt in _alts(text):
        template, _, subject = alt.partition(" ~ ")
        out.append((template.strip(), subject.strip()))
    return tuple(out)


def _numbers(start: int, stop: int, step: int = 1) -> tuple[str, ...]:
    return tuple(str(n) for n in range(start, stop, step))


# --- people and places ----------------------------------------------------------------------

NAMES = _split(
    "Anna, Ben, Carla, David, Elena, Farid, Grace, Hiro, Ines, Jonas, Kemi, Liam, Maya, Nikolai, Olivia, "
    "Pedro, Quinn, Rosa, Samir, Tara, Umar, Vera, Wei, Ximena, Yusuf, Zoe, Amir, Bianca, Chen, Dana, Emil, "
    "Fatima, Gabriel, Hannah, Ivan, Julia, Kenji, Lena, Marco, Nadia, Oscar, Priya, Rafael, Sofia, Tomas, "
    "Uma, Victor, Wanda, Yara, Zain, Aisha, Bruno, Clara, Diego, Eva, Felix, Greta, Hugo, Isla, Jamal, "
    "Alex, Sam, Jordan, Maria, Lukas, Sara, Daniel, Mei, Noor, Tomasz, Leila, Finn, Chloe, Mateo, Ingrid, "
    "Kofi, Amelie, Ravi, Helena, Jonah, Beatriz, Callum, Dmitri, Esther, Florian, Giulia, Hassan, Ilse, "
    "Joaquin, Katja, Lars, Mirela, Nils, Odile, Paulo, Rhea, Stefan, Thea, Ulrich, Valentina, Wiktor, Yasmin"
)
LAST_NAMES = _split(
    "Schmidt, Okafor, Rossi, Nguyen, Garcia, Kowalski, Tanaka, Silva, Haddad, Johansson, Murphy, Novak, "
    "Dubois, Patel, Kim, Fischer, Moreau, Costa, Ivanova, Lindqvist, Mensah, Ortega, Papadopoulos, Quist, "
    "Reyes, Sato, Tran, Ueda, Varga, Weber, Yilmaz, Zhang, Andersen, Becker, Castillo, Demir, Eriksen"
)
# Relatives and acquaintances, never a partner or a pet (those read as the user's own facts).
WHO = _split(
    "my sister, my brother, my mom, my dad, my cousin, my aunt, my uncle, my grandma, my grandpa, my niece, "
    "my nephew, my neighbour, my roommate, my boss, my best friend, my old roommate, my sister-in-law, "
    "my brother-in-law, my godson, my stepdad, my running buddy, my landlady, my mentor, my old teacher"
)
TEAMS = _split("design, finance, sales, data, legal, ops, marketing, platform, support, research, security")
PLACES = _split(
    "the old town, the harbour, the riverside, the market hall, the botanical garden, the castle, "
    "the waterfront, the modern art museum, the cathedral, the main square, the flea market, the old port, "
    "the city park, the lookout hill, the history museum, the food hall, the university quarter, "
    "the street art district, the lake promenade, the covered market, the science centre, the old docks"
)
VENUE_HEADS = _split(
    "Copper, Little, Golden, Olive, Blue Door, Casa, Green Fig, Salt, Juniper, Brass, Velvet, Wild Thyme, "
    "Corner, Half Moon, Lantern, Saffron, Driftwood, Red Lion, Maple, Pepper, Northside, Orchard, Tiny"
)
VENUE_TAILS = _split(
    "Kitchen, Bistro, Cafe, Taqueria, Noodle Bar, Bakery, Trattoria, Diner, Canteen, Brasserie, Deli, "
    "Wine Bar, Tapas Bar, Ramen House, Grill, Dumpling House"
)
CUISINES = _split(
    "Thai, Korean, Ethiopian, Lebanese, Peruvian, Georgian, Vietnamese, Mexican, Greek, Sichuan, Turkish, "
    "Japanese, Indian, Moroccan, Portuguese, Persian, Sri Lankan, Malaysian, Nepalese, Italian"
)
OCCASIONS = _split(
    "first date, team lunch, birthday dinner, quick lunch, family dinner, farewell dinner, Sunday brunch, "
    "work dinner, catch-up with an old friend, celebration"
)
LODGINGS = _split("a guesthouse, a small hotel, an apartment, a hostel, a B&B, a studio flat")
CLOTHING = _split(
    "a light rain jacket, layers, comfortable walking shoes, a warm coat, sunscreen and a hat, "
    "an umbrella, a fleece for the evenings, sandals, a scarf"
)
WEATHER = _split(
    "mild and a bit rainy, hot and dry, grey but rarely freezing, crisp and sunny, windy near the water, "
    "warm during the day and cool at night, pretty unpredictable, cold with short days"
)

# --- food -----------------------------------------------------------------------------------

DISHES = _split(
    "banana bread, shakshuka, miso soup, carbonara, dal, tortilla, curry, focaccia, chili, ramen, lasagna, "
    "tacos, pho, paella, dumplings, pad thai, biryani, falafel, risotto, gnocchi, bibimbap, moussaka, "
    "ceviche, enchiladas, pierogi, goulash, tagine, gumbo, chowder, frittata, quiche, minestrone, pancakes, "
    "granola, hummus, lentil soup, stir-fry, fried rice, burrito bowls, pesto pasta, ratatouille, "
    "jambalaya, katsu curry, mac and cheese, cinnamon rolls, apple crumble, brownies, lemon cake, "
    "cheesecake, tiramisu, flatbreads, spring rolls, mushroom stroganoff, black bean soup"
)
INGREDIENTS = _split(
    "chickpeas, spinach, leftover rice, sweet potatoes, zucchini, feta, mushrooms, eggplant, cauliflower, "
    "lentils, tofu, black beans, kale, butternut squash, halloumi, cherry tomatoes, leeks, bell peppers, "
    "broccoli, coconut milk, avocado, quinoa, eggs, salmon, chicken thighs, carrots, red onions, "
    "cabbage, potatoes, ricotta, pumpkin, green beans, cod, ground beef, shrimp, couscous"
)
SPICES = _split(
    "smoked paprika, cumin, garlic, lemon zest, chili flakes, fresh ginger, za'atar, fresh basil, "
    "soy sauce, miso paste, garam masala, oregano, a splash of vinegar, fresh coriander, black pepper"
)
SIDES = _split(
    "a crunchy slaw, garlic bread, a green salad, roasted potatoes, steamed rice, pickled onions, "
    "a cucumber yogurt dip, grilled corn, flatbread, roasted carrots"
)
DRINKS = _split(
    "a crisp white wine, a light red, a cold lager, sparkling water with lime, iced tea, a dry cider, "
    "a spritz, ginger beer"
)
TEMPS = _numbers(160, 230, 10)

# --- things ---------------------------------------------------------------------------------

PRODUCTS = _split(
    "noise-cancelling headphones, standing desk, air fryer, robot vacuum, road bike, e-reader, "
    "espresso machine, pair of running shoes, rice cooker, mechanical keyboard, tent, mattress, "
    "winter coat, smartwatch, blender, webcam, pair of hiking boots, dehumidifier, electric toothbrush, "
    "tablet, sewing machine, projector, office chair, bread maker, cargo bike, pressure cooker, "
    "carry-on suitcase, portable speaker, water filter, monitor"
)
GADGETS = _split(
    "laptop, phone, tablet, router, printer, smartwatch, e-reader, smart speaker, headphones, camera"
)
GADGET_PROBLEMS = _split(
    "keeps dropping the wifi, won't charge past 80 percent, freezes every few minutes, "
    "is super slow since the last update, makes a weird buzzing noise, won't pair over bluetooth, "
    "restarts on its own at night, gets really hot after ten minutes, won't turn on after the update, "
    "drains the battery overnight"
)
APPLIANCES = _split("dishwasher, washing machine, fridge, boiler, oven, dryer, car, coffee machine")
ITEMS = _split(
    "batteries, birthday candles, a phone charger, printer paper, bin bags, a new kettle, light bulbs, "
    "dish soap, a doormat, picture frames, coffee filters, a bike lock, wrapping paper, oat milk, "
    "dog treats for the neighbours, sunscreen, a spare key, a lunchbox, a yoga mat, an extension cord"
)
STORES = _split(
    "the hardware store, the pharmacy, the post office, the dry cleaner, the bakery, the garden centre, "
    "the bike shop, the library, the supermarket, the print shop"
)
MEDIA = _split("book, podcast, documentary, YouTube channel, online course, newsletter, audiobook")
GENRES = _split("funny, true crime, history, science, comedy, mystery, interview, travel")
BOOKS = _split(
    "Dune, Middlemarch, Beloved, Neuromancer, Persuasion, Rebecca, Emma, Dracula, Frankenstein, "
    "Solaris, Stoner, Atonement, The Hobbit, Moby-Dick, Jane Eyre, The Remains of the Day, Pachinko, "
    "The Overstory, Circe, Project Hail Mary"
)
BANDS = _split(
    "Radiohead, Coldplay, Arctic Monkeys, Fleetwood Mac, Daft Punk, ABBA, The Beatles, Queen, "
    "Pink Floyd, Tame Impala, Massive Attack, The Cure, Portishead, Muse, Blur, Oasis, Bon Iver, Phoenix"
)
PET_KINDS = _split("dog, cat, rabbit, parrot, hamster, puppy, kitten, tortoise")
PET_NAMES = _split(
    "Rex, Luna, Biscuit, Mochi, Pepper, Oscar, Bella, Milo, Nala, Ziggy, Pickles, Hazel, Toby, Olive, "
    "Simba, Maple, Clover, Bruno, Coco, Juniper, Pixel, Waffles, Noodle, Ginger, Shadow, Pumpkin, Rocky"
)
COLORS = _split("sage green, pale blue, warm white, terracotta, navy, mustard yellow, soft grey, olive")
COSTUMES = _split(
    "dragon, pirate, tree, lion, astronaut, robot, mermaid, knight, snowman, dinosaur, fairy, wizard, "
    "shark, bumblebee"
)
ROOMS = _split("hallway, bathroom, spare room, kitchen, bedroom, balcony, living room, study")

# --- activities and events ------------------------------------------------------------------

OUTINGS = _split(
    "pub quiz, jazz concert, street food market, pottery workshop, housewarming party, book club meeting, "
    "football match, comedy show, art exhibition, board game night, wine tasting, 10k fun run, "
    "kids' birthday party, film festival, salsa class, flea market, escape room, barbecue, karaoke night, "
    "open-air cinema, food festival, choir rehearsal, charity run, school fair, dinner party, boat tour, "
    "climbing session, bike tour, cooking class, trivia night, beach clean-up, photography walk"
)
EVENTS = _split(
    "birthday dinner, picnic, baby shower, team offsite, game night, surprise party, family brunch, "
    "housewarming, farewell party, kids' sleepover, garden party, anniversary dinner, book club evening, "
    "potluck, retirement party, movie marathon"
)
HOBBIES = _split(
    "hiking, rock climbing, jazz, board games, sourdough baking, yoga, cycling, photography, gardening, "
    "chess, running, knitting, sci-fi novels, video games, camping, skiing, surfing, pottery, "
    "salsa dancing, birdwatching, craft beer, karaoke, opera, modern art, crossword puzzles, meditation, "
    "tennis, golf, musicals, stand-up comedy, road trips, museums, kayaking, trail running, anime, "
    "vinyl records, sailing, ballet, woodworking, calligraphy, fishing, astronomy, baking"
)
EXERCISES = _split(
    "strength training, interval runs, long runs, swimming laps, pilates, stretching, rowing, "
    "spin classes, hill sprints, kettlebell workouts, bouldering, brisk walks"
)
GOALS = _split(
    "a half marathon, a 10k, my first triathlon, a hiking trip in the Alps, a charity bike ride, "
    "a 5k in the spring, a long-distance walk, a ski trip"
)
TASKS = _split(
    "call the plumber, renew my passport, book the vet, pay the electricity bill, water the plants, "
    "send the photos to the family group, pick up the dry cleaning, return the library books, "
    "order a birthday present, submit the expense report, cancel the gym trial, book a table for Friday, "
    "check the tire pressure, email the landlord, buy stamps, defrost the freezer, back up my laptop, "
    "update the budget spreadsheet, sign the school form, reschedule the dentist, call the bank, "
    "fix the bike light, refill the prescription, book train tickets, clean out the gutters"
)
WORK_ITEMS = _split(
    "the quarterly report, the client pitch, the budget review, the onboarding docs, the sprint demo, "
    "the board deck, the migration plan, the grant proposal, the survey results, the hiring plan, "
    "the product roadmap, the vendor contract, the training slides, the incident write-up, "
    "the pricing proposal, the annual review, the launch checklist, the research summary"
)
MEETINGS = _split(
    "weekly sync, planning meeting, design review, budget review, all-hands, retro, client call, "
    "one-on-one, kickoff meeting, status update, standup, strategy session"
)
DOCS = _split(
    "email, message, cover letter, complaint, thank-you note, short speech, LinkedIn post, short bio, "
    "apology, reminder note, reference letter, resignation letter, out-of-office reply"
)
RECIPIENTS = _split(
    "my landlord, the school, my team, the airline, a recruiter, my neighbours, the building manager, "
    "our client, my bank, the gym, the hotel, my kid's teacher, the council, the insurance company"
)
ISSUES = _split(
    "the broken heating, a delayed refund, the noise at night, a missed delivery, next week's offsite, "
    "the broken lift, a billing error, the parking situation, a cancelled flight, a late invoice, "
    "the leaking tap, a double charge, the new rota, a lost suitcase, the damp in the bathroom"
)
CONCEPTS = _split(
    "compound interest, inflation, the offside rule, how mortgages work, what a heat pump does, "
    "the electoral college, how tides work, photosynthesis, index funds, how vaccines train the immune "
    "system, tax brackets, how noise-cancelling works, carbon offsets, how credit scores work, "
    "what a recession is, how jet lag works, the placebo effect, how solar panels work, supply chains"
)
TOPICS = _split(
    "remote work, climate policy, electric cars, interest rates, machine learning, home renovation, "
    "sleep hygiene, personal finance, urban gardening, the housing market, public transport, meal prep, "
    "index funds, solar panels, heat pumps, composting, intermittent fasting, language learning apps, "
    "the four-day work week, minimalism, stoicism, ancient Rome, black holes, the history of jazz, "
    "marathon training, cold water swimming, music theory, public speaking, time management, houseplants, "
    "bird migration, quantum computing, cybersecurity basics, retirement savings, mortgage rates, "
    "fermentation, rent prices, the space race, ocean plastics, productivity apps"
)
LANGUAGES = _split(
    "Spanish, Japanese, German, French, Italian, Portuguese, Mandarin, Korean, Arabic, Dutch, Swedish, "
    "Turkish, Greek, Polish, Hindi"
)

# --- time and numbers -----------------------------------------------------------------------

PAST = _split(
    "yesterday, last night, on Saturday, over the weekend, last Tuesday, on Sunday afternoon, "
    "two weeks ago, three days ago, last weekend, earlier today, this morning, on Friday night, "
    "last month, the other day, on Wednesday evening, over Easter"
)
FUTURE = _split(
    "tomorrow, next Friday, next month, in two weeks, the day after tomorrow, next Monday, on Saturday, "
    "this weekend, on Thursday morning, tonight, later today, next week, before the weekend, "
    "on Sunday evening, after lunch"
)
DAYS = _split("Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday")
MONTHS = _split(
    "January, February, March, April, May, June, July, August, September, October, November, December"
)
SEASONS = _split("spring, summer, autumn, winter")
TIMES = tuple(f"{h}:{m:02d}" for h in range(7, 22) for m in (0, 15, 30, 45))
LINES = _split(
    "U2 train, number 12 tram, Northern line, S1, 8:10 train, night bus, express bus, M3, regional train, "
    "blue line, 47 bus, red line"
)
N_PEOPLE = _numbers(3, 13)
AGES = _numbers(8, 91)
DECADES = _split("twenties, thirties, forties, fifties, sixties")
N_DAYS = _numbers(2, 8)
N_WEEKS = _numbers(2, 13)
COUNTS = _numbers(3, 8)
HOURS = _numbers(2, 7)
MINUTES = _numbers(10, 95, 5)
PRICES = _numbers(15, 420, 5)
PERCENTS = _numbers(5, 26)
KMS = _numbers(8, 33)

# --- user turns -----------------------------------------------------------------------------
# Per kind: ``template ~ subject``. Every template of a kind uses that kind's CORE fields, which
# the assistant's reply may refer to; the subject is what a later "make it shorter" points at.

USER: dict[str, tuple[tuple[str, str], ...]] = {
    "recipe": _pairs(
        "How do I make {dish} like the one at {venue}? ~ the {dish} recipe | "
        "Can you give me a simple {dish} recipe for {n_people} people? ~ the {dish} recipe | "
        "Is it okay to freeze leftover {dish} from {past}, and for how long? ~ the tips on freezing {dish} | "
        "What's a good side to go with {dish} on {day}? ~ the sides for the {dish} | "
        "We're cooking {dish} for {n_people} on {day}, how much should we buy? "
        "~ the {dish} shopping amounts | "
        "What goes well with {cuisine} food like {dish}? ~ the pairing ideas for {dish} | "
        "My {dish} always comes out bland, even with extra {spice}. What am I doing wrong? "
        "~ the {dish} tips | "
        "Can {dish} be made on {day} for a lunch on {day2}, or does it go soggy? "
        "~ the make-ahead {dish} plan | "
        "Craving {dish} tonight. Is there a version that takes under {minutes} minutes? ~ the quick {dish} | "
        "Could you scale a {dish} recipe to {n_people} portions for {day}? ~ the scaled {dish} recipe"
    ),
    "pantry": _pairs(
        "Any ideas for dinner with {ingredient}, {ingredient2} and whatever's left in the fridge? "
        "~ the {ingredient} dinner ideas | "
        "What can I cook in {minutes} minutes with {ingredient} and {ingredient2}? "
        "~ the quick {ingredient} dinner | "
        "There's a big bag of {ingredient} that needs using up by {day}. Recipe ideas? "
        "~ the {ingredient} ideas | "
        "Can you suggest a lunch to prep on {day} with {ingredient} and {ingredient2}? "
        "~ the {ingredient} meal prep plan | "
        "What's a kid-friendly way to use up {ingredient} before {day}? ~ the {ingredient} recipes | "
        "Got {ingredient}, {ingredient2} and some rice. Dinner for {n_people}? ~ the {ingredient} dinner plan"
    ),
    "travel": _pairs(
        "What's the weather usually like in {city} in {month}? ~ the {city} packing advice | "
        "What are some fun things to do in {city} next weekend with {who}? ~ the {city} list | "
        "We have {n_days} days in {city} in {month}. What shouldn't we miss? ~ the {city} itinerary | "
        "Is it worth taking the train from {city2} to {city}, or should we fly? "
        "~ the {city} travel options | "
        "Any tips for visiting {place} in {city} without the crowds? ~ the {city} tips | "
        "What should I pack for {n_days} days in {city} in {month}? ~ the {city} packing list | "
        "Is {city} expensive to visit? Budget is about {cur}{price} a day. ~ the {city} budget | "
        "Where should we stay in {city} to be near {place}? ~ the {city} neighbourhood tips | "
        "Can you suggest a {n_days}-day itinerary for {city} with lots of {hobby}? ~ the {city} itinerary | "
        "Flying into {city} on {day} at {time}. How do we get from the airport to the centre? "
        "~ the {city} airport directions"
    ),
    "gift": _pairs(
        "What's a good gift for someone who loves {hobby}? Budget is {cur}{price}. "
        "~ the {hobby} gift ideas | "
        "{Who} turns {age} on {day} and is really into {hobby}. Ideas under {cur}{price}? "
        "~ the {hobby} gift list | "
        "Need a thank-you present for {name}, who is big on {hobby}. Ideas? ~ the present ideas for {name} | "
        "What do you get a retiring colleague who spends every weekend on {hobby}? The collection is at "
        "{cur}{price}. ~ the retirement gift ideas | "
        "Looking for a {hobby} gift for {who}, budget around {cur}{price}. ~ the {hobby} gift shortlist"
    ),
    "draft": _pairs(
        "Could you draft {a_doc} to {recipient} about {issue}? ~ the {doc} about {issue} | "
        "Can you help me write {a_doc} to {recipient} about {issue}? Keep it under {count} sentences. "
        "~ the {doc} to {recipient} | "
        "Please write a polite {doc} to {recipient} about {issue}, nothing passive-aggressive. "
        "~ the {doc} to {recipient} | "
        "Can you make my {doc} to {recipient} about {issue} sound less blunt? ~ the rewritten {doc} | "
        "Need {a_doc} to {recipient} about {issue} by {day}, can you start one? ~ the {doc} draft"
    ),
    "plan": _pairs(
        "Help me plan {a_event} for {n_people} people on {day}. ~ the {event} plan | "
        "Can you make a to-do list for the {event} on {day}, starting at {time}? ~ the {event} to-do list | "
        "We're hosting {a_event} on {day} for {n_people} guests, one of them vegan. Menu ideas? "
        "~ the {event} menu | "
        "What's a realistic timeline for {a_event} on {day} if we start at {time}? ~ the {event} timeline | "
        "Any cheap decoration ideas for {a_event} on {day}? Budget is {cur}{price}. "
        "~ the {event} decoration ideas | "
        "How much food do we need for {a_event} with {n_people} adults on {day}? ~ the {event} food estimate"
    ),
    "workload": _pairs(
        "Can you help me plan the week? {Work_item} is due {day} and I still have to {task}. "
        "~ the plan for {work_item} | "
        "What's a realistic schedule to finish {work_item} by {day}? ~ the {work_item} schedule | "
        "How do I tell {name} that {work_item} will slip to {day}? ~ the message to {name} | "
        "Can you help me prep talking points on {work_item} for {day}? ~ the {work_item} talking points | "
        "Presenting {work_item} to {n_people} people on {day}. How do I keep it under {minutes} minutes? "
        "~ the {work_item} outline | "
        "Should I block {day} morning for {work_item} or split it over two afternoons? "
        "~ the plan for {work_item}"
    ),
    "explain": _pairs(
        "Can you explain {concept} in simple terms? {Who} brought it up {past}. "
        "~ the {concept} explanation | "
        "Quick question before my {meeting}: what's the deal with {concept}? ~ the {concept} explanation | "
        "How would you explain {concept} to a twelve-year-old? Asking for {who}. ~ the kid version | "
        "{Who} asked me about {concept} and I blanked. Short version? ~ the short version of {concept} | "
        "Can you explain {concept} with a real example, maybe with {cur}{price}? ~ the {concept} example | "
        "Was reading about {concept} {past} and lost the thread halfway. Can you help? "
        "~ the {concept} explanation"
    ),
    "news": _pairs(
        "Can you summarize the news about {topic} from {past}? ~ the {topic} summary | "
        "Keep hearing about {topic} at work, the {team} team won't stop. What's the short version? "
        "~ the {topic} summary | "
        "Why is everyone in {city} talking about {topic} lately? ~ the {topic} overview | "
        "What are the main arguments for and against {topic}? {Who} and I disagree. "
        "~ the {topic} pros and cons | "
        "Give me {count} bullet points on {topic} I can bring up at dinner on {day}. "
        "~ the {topic} bullet points"
    ),
    "recommend": _pairs(
        "Can you recommend a good {media} about {topic} for the flight to {city}? "
        "~ the {topic} {media} list | "
        "Any {genre} podcasts on {topic} for a {hours}-hour drive? ~ the {topic} podcast picks | "
        "Looking for a {media} on {topic}, nothing too dense. Suggestions? ~ the {topic} suggestions | "
        "Is there a beginner-friendly {media} about {topic} for {who}? ~ the {topic} {media} suggestions | "
        "What should I read after {book} if I want something on {topic}? ~ the {topic} reading list"
    ),
    "eatout": _pairs(
        "What's a good {cuisine} place in {city} for {a_occasion}? ~ the {cuisine} restaurant list | "
        "Any {cuisine} spots near {place} in {city} that take bookings for {n_people}? "
        "~ the {cuisine} booking options | "
        "Where can we get decent {cuisine} food in {city} after {time}? ~ the late-night {cuisine} options | "
        "Is {venue} in {city} good for {a_occasion}, or should we try something {cuisine}? "
        "~ the {venue} comparison"
    ),
    "fitness": _pairs(
        "How often should I do {exercise} if the goal is {goal} by {month}? ~ the {exercise} plan | "
        "Knees hurt after {exercise} on {day}. Should I take {n_days} days off? ~ the recovery advice | "
        "Can you build me a {n_days}-day workout plan with {exercise} and {exercise2}? "
        "~ the {exercise} workout plan | "
        "Is {km} km of {exercise} a reasonable week, {n_weeks} weeks before {goal}? ~ the {exercise} plan | "
        "What should I eat before a {minutes}-minute session of {exercise}? ~ the {exercise} snack ideas | "
        "Can you fit {exercise} into a lunch break of {minutes} minutes on {day}s? "
        "~ the lunch {exercise} plan"
    ),
    "gadget": _pairs(
        "My {gadget} {problem}, and there's a deadline on {day}. Any idea how to fix it? "
        "~ the {gadget} fix | "
        "The {gadget} {problem} again, and it's only {count} years old. Worth repairing or replacing? "
        "~ the {gadget} repair advice | "
        "Work {gadget} {problem} and IT is off until {day}. Anything to try first? "
        "~ the {gadget} troubleshooting steps | "
        "First the {appliance} broke and now the {gadget} {problem}. Where do I even start? "
        "~ the {gadget} repair plan"
    ),
    "shopping": _pairs(
        "Which {product} should I buy for under {cur}{price}? ~ the {product} shortlist | "
        "Is {a_product} worth it for a small flat in {city}? ~ the {product} verdict | "
        "Is {a_product} a good housewarming gift for {name}, or is that weird? ~ the {product} verdict | "
        "Thinking about {a_product} for {cur}{price}. Any red flags? ~ the {product} checklist | "
        "What should I look for in {a_product} if it's mostly for {hobby}? ~ the {product} buying guide"
    ),
    "budget": _pairs(
        "Help me plan a budget for {month}; rent went up by {cur}{price}. ~ the {month} budget | "
        "Paying off the credit card or putting {cur}{price} a month into savings, which is smarter? "
        "~ the savings comparison | "
        "How much should we set aside each month for a trip to {city} in {month}? "
        "~ the {city} savings plan | "
        "Can you split a {cur}{price} dinner bill between {n_people} people with a {percent}% tip? "
        "~ the bill split | "
        "Electricity bill jumped by {percent}% this quarter, to {cur}{price}. Ideas to cut it? "
        "~ the energy savings tips"
    ),
    "remind": _pairs(
        "Can you remind me to {task} {future}? ~ the reminder to {task} | "
        "Don't let me forget to {task} before {time} on {day}. ~ the reminder to {task} | "
        "Set a reminder to {task} at {time} on {day}, please. ~ the reminder to {task} | "
        "Add a note to {task} {future}, and another to {task2} on {day}. ~ the {day} reminders | "
        "Remind me {future} at {time} to {task}? ~ the reminder to {task}"
    ),
    "good": _pairs(
        "We went to {a_outing} {past} and it was so much fun. ~ the {outing} | "
        "Just got back from {a_outing} with {friend}, what a great evening. ~ the {outing} | "
        "We tried {venue} {past}. The {dish} was amazing. ~ dinner at {venue} | "
        "Finally finished {book} {past}, took me {n_weeks} weeks. ~ finishing {book} | "
        "{Friend} and I went to {a_outing} {past} and stayed out way too late. ~ the {outing} | "
        "That {dish} recipe was great, we made it {past} for {n_people} people. ~ the {dish} | "
        "Spent the weekend repainting the {room} with {friend}. It's {color} now and looks great. "
        "~ the new {room} colour | "
        "The {outing} {past} was the best thing all month, {friend} already wants to go again. "
        "~ the {outing} | "
        "Good morning! Coffee first, then planning. {Work_item} went out {past}, so today is calm. "
        "~ sending off {work_item} | "
        "Saw {band} live {past}, ears still ringing. ~ the {band} concert"
    ),
    "bad": _pairs(
        "What a week, {work_item} took up most of it and I still have to {task}. ~ {work_item} | "
        "My flight to {city} got delayed by {hours} hours {past}, what a mess. ~ the delayed {city} flight | "
        "The {line} was {minutes} minutes late again this morning. ~ the {line} | "
        "Our {appliance} died {past}, so it's been takeaway every night. ~ the broken {appliance} | "
        "Couldn't sleep last night, the neighbours had a party until {time}. On a {day}! "
        "~ the neighbours' party | "
        "Ugh, Mondays. {Work_item} is already behind and it's only {time}. ~ {work_item} | "
        "Long day. Thinking about ordering {cuisine} from {venue} and doing nothing. ~ the long day | "
        "The {meeting} with {name} ran {minutes} minutes over again. ~ the {meeting} | "
        "{Name} from the {team} team keeps rescheduling our {meeting}. ~ the {meeting} with {name} | "
        "Had {count} back-to-back meetings and {name} still wants {work_item} by {time}. Brain is fried. "
        "~ the meeting marathon | "
        "{Who} is visiting {future} and the guest room is still full of boxes. ~ the guest room chaos | "
        "Kids have a school play {future} and the {costume} costume is only half done. "
        "~ the {costume} costume | "
        "Tried {venue} {past}. The {dish} was fine but way overpriced. ~ {venue}"
    ),
    "distractor": _pairs(
        "{Who} lives in {city} now. ~ {who} | "
        "{Who} just moved to {city} for a job at {company}. ~ {who} | "
        "{Friend} works at {company} as {a_title}. ~ {friend} | "
        "My colleague {name} is {a_title} in {city}, commutes {hours} hours every week. ~ {name} | "
        "{Who} loves {hobby}, so that's the plan for {day}. ~ {who} | "
        "{Friend} hates {hobby}, which makes planning the weekend in {city} tricky. ~ {friend} | "
        "{Who} grew up in {city} and still talks about the {dish} there. ~ {who} | "
        "My best friend's dog {pet} chewed through a {product} box {past}. ~ {pet} | "
        "{Friend} is vegan, so dinner at {venue} on {day} is tricky. ~ {friend} | "
        "My cousin got a job at {company} {past}. ~ your cousin | "
        "{Friend}'s favorite band is {band}, and they're playing in {city} in {month}. ~ {friend} | "
        "My neighbour {name} is learning {language} and practises on anyone who stands still. ~ {name} | "
        "{Who} is thinking about adopting a {pet_kind} called {pet}. ~ {who} | "
        "{Friend} just got promoted to {title} at {company}. ~ {friend} | "
        "{Who} turns {age} on {day}, and nobody has a present yet. ~ {who}"
    ),
    "hypothetical": _pairs(
        "If I moved to {city}, would I need a car? ~ moving to {city} | "
        "Might move to {city} next year. Is rent there as bad as people say? ~ moving to {city} | "
        "If I took a job at {company}, the commute would be {minutes} minutes. Worth it? "
        "~ the job at {company} | "
        "Someday I'd love to live in {city}, somewhere near {place}. ~ living in {city} | "
        "I wonder if I'd like living in {city}. {Friend} moved there {past} and never looked back. "
        "~ living in {city} | "
        "If we swapped the flat for a house outside {city}, would the commute kill us? ~ the house idea | "
        "If money were no object, would {a_product} or a trip to {city} be the better buy? "
        "~ the {city} trip versus {a_product}"
    ),
    "wonder": _pairs(
        "Would I even enjoy {hobby}, do you think? {Friend} swears by it. ~ {hobby} | "
        "If I picked up {hobby} this {season}, what gear would I need? ~ {hobby} | "
        "Maybe I'll try {hobby} this {season}, {friend} keeps inviting me. ~ {hobby} | "
        "Wondering whether {hobby} would be a good way to meet people in {city}. ~ {hobby} | "
        "Is it too late to start {hobby} in your {decade}? {Who} thinks so. ~ {hobby}"
    ),
    # Replies to the assistant's last answer ({subject} is what it was about).
    "shorter": _pairs(
        "Thanks! Can you make {subject} a bit shorter? ~ {subject} | "
        "Hmm, {subject} feels like a lot. Can we cut it to {count} points? ~ {subject} | "
        "Can you turn {subject} into a checklist I can tick off {future}? ~ {subject} | "
        "Too long for my phone. Can {subject} fit on one screen? ~ {subject}"
    ),
    "addition": _pairs(
        "That works. Could you add {extra} to {subject}? ~ {subject} | "
        "Not quite. Can you redo {subject} with {extra}? ~ {subject} | "
        "Good, but {subject} is missing {extra}. ~ {subject}"
    ),
    "tone": _pairs(
        "Good start! Could {subject} be more casual? It's for {name}. ~ {subject} | "
        "Can you make {subject} sound a bit warmer? {Who} will read it too. ~ {subject} | "
        "{Subject} reads a bit stiff, can you loosen it up before {day}? ~ {subject}"
    ),
    "thanks": _pairs(
        "Nice, saving {subject} for {future}. ~ {subject} | "
        "Point {count} in {subject} is exactly what I needed, thanks. ~ {subject} | "
        "Perfect, {subject} is going straight to {friend}. ~ {subject} | "
        "Great, {subject} covers it. Trying it {future}. ~ {subject}"
    ),
}
# Fields every template of a kind uses (checked by the tests).
CORE: dict[str, tuple[str, ...]] = {
    "recipe": ("dish",),
    "pantry": ("ingredient",),
    "travel": ("city",),
    "gift": ("hobby",),
    "draft": ("doc", "recipient", "issue"),
    "plan": ("event", "day"),
    "workload": ("work_item", "day"),
    "explain": ("concept",),
    "news": ("topic",),
    "recommend": ("topic",),
    "eatout": ("cuisine", "city"),
    "fitness": ("exercise",),
    "gadget": ("gadget", "problem"),
    "shopping": ("product",),
    "remind": ("task",),
}
# How often each kind of free-standing user turn comes up.
USER_WEIGHTS: dict[str, float] = {
    "recipe": 4,
    "pantry": 3,
    "travel": 5,
    "gift": 2,
    "draft": 3,
    "plan": 2,
    "workload": 3,
    "explain": 2,
    "news": 2,
    "recommend": 2,
    "eatout": 2,
    "fitness": 2,
    "gadget": 2,
    "shopping": 2,
    "budget": 2,
    "remind": 3,
    "good": 8,
    "bad": 8,
    "distractor": 12,
    "hypothetical": 4,
    "wonder": 3,
    "shorter": 3,
    "addition": 2,
    "tone": 1,
    "thanks": 2,
}
# Kinds that answer the assistant's last request and so need one in the session.
FOLLOW_UP_KINDS = frozenset({"shorter", "addition", "tone", "thanks"})
REQUEST_KINDS = frozenset(CORE) | {"budget"}
# Kinds that may follow a fact statement in the same message.
TAIL_KINDS = (
    "recipe", "pantry", "travel", "gift", "draft", "plan", "explain", "news", "recommend", "eatout",
    "fitness", "gadget", "shopping", "budget", "remind", "good", "bad",
)  # fmt: skip
EXTRAS = _split(
    "a rough timeline, prices, a shopping list, a few alternatives, links to sources, a vegetarian option, "
    "a budget column, a short intro, a backup plan for rain, times for each step, a one-line summary, "
    "a friendlier ending"
)
ACKS = _split(
    "thanks!, ok, perfect, Thanks, got it, sounds good, nice, great, ok cool, makes sense, "
    "thank you so much!, will do, brilliant, amazing, Thanks!, perfect thanks, cool, 👍, ty, thx, "
    "ok thanks, great thanks!, got it thanks, love it, haha yes, 🙏, yes please, that's all for now, "
    "cheers, ok!, sure, yep, nice one, awesome, appreciate it, thank you!, super helpful, Perfect!, lol ok"
)
# Said before a fact statement ("Oh, by the way, I live in ...").
LEAD_INS = _split(
    "Oh by the way, | Quick thing: | Random, but | Before I forget, | Just so you know, | For context, | "
    "Side note: | Also, | Oh and | Small update: | FYI, | Not sure it matters, but",
    "|",
)

# --- assistant turns ------------------------------------------------------------------------

OPENERS: dict[str, tuple[str, ...]] = {
    "request": _alts(
        "Sure! | Happy to help. | Good question. | Of course. | Absolutely. | Here's what I'd do. | "
        "Great question! | Let's figure it out. | Okay! | Sure thing. | Easy one. | Glad you asked. | "
        "Here's a quick take. | Let's do it. | Good call asking. | Right, so: | Okay, here goes. | "
        "Love this kind of question. | No problem. | Here's a plan."
    ),
    "good": _alts(
        "That sounds lovely! | Oh nice! | How fun! | Love that. | That's great to hear. | "
        "Sounds like a win. | "
        "Ha, amazing. | What a good way to spend the time. | Nice one! | That's brilliant."
    ),
    "bad": _alts(
        "Oof, sorry to hear that. | That sounds rough. | Ugh, that's annoying. | Oh no. | That's a lot. | "
        "Hang in there. | That sounds exhausting. | Not fun at all. | Sorry, that's frustrating. | Yikes."
    ),
    "distractor": _alts(
        "Oh, interesting! | Ha, nice. | Good to know. | That's fun. | Oh really? | "
        "Sounds like a character. | "
        "That's sweet. | Oh, cool."
    ),
    "hypothetical": _alts(
        "Fun thing to think about. | Good question to ask early. | Worth thinking through. | "
        "Ooh, big decision. | Honestly, it depends. | Let's weigh it up. | Interesting idea!"
    ),
    "react": _alts(
        "Sure, here you go. | Done. | Good idea. | Of course. | Here's the updated version. | Easy fix. | "
        "Got it, trimmed down. | Coming right up."
    ),
    "fact": _alts(
        "Thanks for telling me. | Good to know! | Noted. | Got it. | Thanks for the context. | Oh nice. | "
        "Appreciate you sharing that. | Makes sense. | Okay, noted. | Good to know."
    ),
    "change": _alts(
        "Thanks for the update. | Oh, okay! | Good to know things changed. | "
        "Noted, thanks for updating me. | "
        "Oh, that's a change! | Ah, interesting. | Got it, updating my notes."
    ),
    "ack": _alts("You're welcome! | Anytime! | Glad it helped. | Happy to help. | Great. | Perfect."),
}
CLOSERS: dict[str, tuple[str, ...]] = {
    "request": _alts(
        "Want me to turn this into a checklist? | Let me know how it goes! | Should I adjust anything? | "
        "Happy to go deeper on any of these. | Want a shorter version? | I can add {extra} if useful. | "
        "Want me to save this for {future}? | Shall I put it in a table? | "
        "Tell me if {day} changes anything. | Anything to tweak?"
    ),
    "good": _alts(
        "Was it busy? | Would you go again? | Any photos? | What was the highlight? | "
        "Want ideas for something similar {future}?"
    ),
    "bad": _alts(
        "Want help sorting it out? | Can I take something off your plate? | "
        "Maybe an early night {future}? | Shall I draft a quick message about it? | Want to vent a bit more?"
    ),
    "distractor": _alts(
        "How are they finding it? | Do you see them often? | Want ideas for a visit? | "
        "Should I remember that for next time?"
    ),
    "hypothetical": _alts(
        "Want me to compare the options? | Shall I list pros and cons? | "
        "Happy to run the numbers with you. | Want a short checklist for deciding?"
    ),
    "react": _alts("Anything else to change? | Better? | Want it even shorter? | Should I keep this tone?"),
    "fact": _alts(
        "I'll keep that in mind. | I'll factor that in from now on. | That helps for future suggestions. | "
        "Anything you'd like to plan around that?"
    ),
    "ack": _alts("Talk soon! | Enjoy the rest of your {daypart}. | Ping me anytime. | Good luck!"),
}
DAYPARTS = _split("morning, afternoon, evening, day, weekend, week")
# What an acknowledgement wishes luck with when nothing came up earlier in the session.
ACK_SUBJECTS = _split("the rest of my day, the week ahead, the weekend, everything, the plan, tonight")

# Bodies per user kind; fresh fields are drawn where the user did not say them.
BODIES: dict[str, tuple[str, ...]] = {
    "recipe": _alts(
        "For {dish}, start with {spice} and give it about {minutes} minutes on medium heat. | "
        "A good {dish} for {n_people} needs roughly {count} core ingredients; {spice} does the heavy "
        "lifting. | "
        "{Dish} freezes well for about {n_weeks} weeks; cool it fully and thaw it overnight in the fridge. | "
        "With {dish}, {side} and {drink} make an easy pairing for {day}. | "
        "Bland {dish} usually needs more salt early and a hit of {spice} at the end. | "
        "You can make {dish} a day ahead; keep the sauce separate and reheat at {temp} degrees. | "
        "A quick {dish}: prep everything first, cook hot and fast, and finish with {spice}. | "
        "For {count} portions of {dish}, halve everything except the {spice}, then taste as you go."
    ),
    "pantry": _alts(
        "With {ingredient}, try a quick traybake at {temp} degrees for {minutes} minutes with {spice}. | "
        "You can use {ingredient} in a frittata, a curry or fritters; the curry is the fastest on {day}. | "
        "Toss {ingredient} with {spice} and some pasta, then top with {side}. | "
        "Blend {ingredient} into a soup: about {minutes} minutes, then finish with {spice}. | "
        "{Ingredient} plus eggs makes a solid lunch; pack {side} on the side for {day}."
    ),
    "travel": _alts(
        "{City} is usually {weather} around then, so bring {clothing}. | "
        "With {n_days} days in {city}, spend one around {place}, one at {place2}, and keep the last loose. | "
        "In {city}, go to {place} before {time} to beat the crowds, then grab lunch near {place2}. | "
        "Staying near {place} in {city} puts you within walking distance of most sights; look at "
        "{lodging}. | "
        "Budget-wise, {city} runs about {cur}{price} a day if you eat where locals eat. | "
        "From the airport, the train to central {city} takes about {minutes} minutes and leaves every "
        "quarter hour. | "
        "The train to {city} is often nicer than flying once you count the airport time; book {n_weeks} "
        "weeks ahead."
    ),
    "gift": _alts(
        "For someone into {hobby}, a class voucher or a good guidebook both land well around {cur}{price}. | "
        "Think {hobby} accessories: something they'd use every week but wouldn't buy for themselves. | "
        "A {hobby} experience day beats another object; many start around {cur}{price}. | "
        "Pair something practical for {hobby} with a handwritten note; that combination rarely misses. | "
        "Ask around quietly what they're missing for {hobby}; otherwise a nice {product} is a safe bet."
    ),
    "draft": _alts(
        "Here's a draft {doc} to {your_recipient}: it states {issue} up front, asks for a reply by {day}, "
        "and stays polite. | "
        "I've kept the {doc} to {count} sentences: the problem with {issue}, what you need, and a "
        "deadline. | "
        "Draft below. I softened the opening about {issue} and added a clear ask for {day}. | "
        "For {your_recipient}, I'd lead with the facts about {issue}, then propose a fix and a date. | "
        "Here's a friendlier {doc}; it mentions {issue} once and ends with a thank-you."
    ),
    "plan": _alts(
        "For the {event} on {day}, start setup around {time} and plan about {count} dishes for {n_people}. | "
        "Here's a simple {event} plan: invites by {day2}, shopping the day before, setup at {time}. | "
        "For {n_people} people, budget roughly {cur}{price} for the {event}, with drinks as the biggest "
        "cost. | "
        "Keep the {event} menu to {count} things that can be made ahead, plus {side}. | "
        "A {event} timeline: guests at {time}, food an hour later, and {count} simple activities in between."
    ),
    "workload": _alts(
        "Block {day} morning for {work_item}, keep afternoons for meetings, and leave a buffer before the "
        "deadline. | "
        "Split {work_item} into {count} chunks and do the hardest one first, ideally before {time}. | "
        "Be early and plain about it: {work_item} moves to {day}, here's why, and here's what's done. | "
        "For {work_item}, three talking points: where it stands, the main risk, and what you need by "
        "{day}. | "
        "Aim for {count} slides on {work_item} and rehearse once out loud; that keeps it to {minutes} "
        "minutes."
    ),
    "explain": _alts(
        "In short, {concept} comes down to a few moving parts; here's the version without jargon. | "
        "The key idea behind {concept} fits in {count} sentences, so here they are. | "
        "The simple version of {concept}: one cause, one effect, and a few exceptions people argue about. | "
        "Here's {concept} with an everyday example, one step at a time. | "
        "For a twelve-year-old: {concept} is mostly about cause and effect, and here's an everyday example."
    ),
    "news": _alts(
        "The short version on {topic}: {count} main developments, and most of the debate is about costs. | "
        "On {topic}, the headlines from {past} mostly repeat one study; the details are more nuanced. | "
        "For {topic}, the main argument for is long-term savings, and against is the upfront cost. | "
        "Here are {count} points on {topic} that work well as dinner conversation."
    ),
    "recommend": _alts(
        "For {topic}, I'd start with a {genre} {media} that explains the basics before going deep. | "
        "A few {media} picks on {topic}: one light, one thorough, and one that's {hours} hours of pure "
        "story. | "
        "For {topic}, pick one overview {media} and one deep dive; that pairing works well. | "
        "For a beginner, a short {media} on {topic} beats a textbook; aim for under {count} hours total."
    ),
    "eatout": _alts(
        "For {cuisine} in {city}, look around {place}; {venue} has a good reputation for a {occasion}. | "
        "Try {venue} near {place} in {city}; book ahead for groups of {n_people} or more. | "
        "Late-night {cuisine} in {city} is easiest near {place}; several places serve until {time}. | "
        "{Venue} is cosy for a {occasion}, but for {cuisine} the area near {place} in {city} is stronger."
    ),
    "fitness": _alts(
        "For {exercise}, {count} sessions a week is plenty; keep one easy and one hard. | "
        "If your knees hurt after {exercise}, rest {n_days} days, then ease back in at half the volume. | "
        "Here's a {n_days}-day plan mixing {exercise} with mobility work and one full rest day. | "
        "Before {minutes} minutes of {exercise}, a banana or toast about an hour earlier works well. | "
        "Build {exercise} up by about {percent}% a week, with at least one easy day between hard ones."
    ),
    "gadget": _alts(
        "If the {gadget} {problem}, restart it, check for updates, and then reset network settings. | "
        "A {gadget} that {problem} is often a settings issue; try a reset before paying for a repair. | "
        "Try this on the {gadget}: power it off for {minutes} seconds, update it, and test again on {day}. | "
        "If the {gadget} is older than {count} years and {problem}, replacing it is usually cheaper."
    ),
    "shopping": _alts(
        "For {a_product} under {cur}{price}, prioritise build quality and a long warranty over features. | "
        "{A_product} is worth it if you'd use it at least {count} times a week; otherwise skip it. | "
        "Red flags for {a_product}: no reviews older than {count} months and a warranty under a year. | "
        "For {a_product}, check the return window first and keep the box for {n_weeks} weeks."
    ),
    "budget": _alts(
        "Try the simple split: fixed costs first, then {percent}% to savings, then everything else. | "
        "Put {cur}{price} aside each month in a separate account and the trip pays for itself. | "
        "Paying off high-interest debt first usually wins; the maths favours it above about {percent}%. | "
        "Cutting standby power and washing at lower temperatures can shave {percent2}% off the bill. | "
        "Here's a {month} budget with rent, groceries and a small buffer of {cur}{price}."
    ),
    "remind": _alts(
        "Reminder set: {task}, {future}. | "
        "Okay, I'll remind you to {task} at {time}. | "
        "Done: {task} is on your list for {day}. | "
        "Got it, {task} before {day}; I'll nudge you the evening before. | "
        "Added: {task}. I'll bring it up {future}."
    ),
    "good": _alts(
        "Glad {your_subject} went so well; worth repeating {future}. | "
        "{Your_subject} sounds like the perfect break before {day}. | "
        "Sounds like {your_subject} was worth it, and a nice change from {work_item}. | "
        "That's the kind of {daypart} that recharges you; maybe make it a monthly thing? | "
        "Nice, {your_subject} sounds like a keeper. {Outing2} could be a good follow-up. | "
        "Love that. If you want a repeat, {venue} does something similar on {day}s."
    ),
    "bad": _alts(
        "Sorry about {your_subject}; hopefully {future} is calmer. | "
        "That sounds draining; {your_subject} would wear anyone out. A quiet {daypart2} might help. | "
        "Maybe keep {future} light after {your_subject}, and leave {task} for {day}. | "
        "If {your_subject} keeps happening, it might be worth raising it with someone before {day}. | "
        "After {your_subject}, you've earned {a_outing} or at least a long walk {future}."
    ),
    "distractor": _alts(
        "Sounds like {your_subject} has a lot going on. Maybe {a_outing} together on {day}? | "
        "Fun to hear about {your_subject}; a small {product}-themed gift could make their week. | "
        "{Your_subject} sounds like good company, especially for {hobby2}. | "
        "That's a nice detail about {your_subject}. Anything you'd like to plan for {future}? | "
        "Good to know about {your_subject}; I'll keep it in mind if you plan something for {day}."
    ),
    "hypothetical": _alts(
        "With {your_subject}, the biggest factors are cost, commute and how often you'd see {friend}. | "
        "For {your_subject}, a {n_days}-day trial run in {month} would tell you a lot. | "
        "It's worth writing down what would actually change with {your_subject}; start with {count} "
        "points. | "
        "If {your_subject} keeps coming up, that's usually a sign it's worth exploring by {month}. | "
        "Rent, transport and {season} weather are the three things to check for {your_subject}."
    ),
    "wonder": _alts(
        "Trying {your_subject} is easy: one beginner session costs about {cur}{price}. | "
        "Most people know within {count} sessions whether {your_subject} is for them. | "
        "You don't need much gear for {your_subject} at first; borrow from {friend} before you buy. | "
        "It's easy to get into {your_subject}, and plenty of groups meet on {day}s around {time}. | "
        "Give {your_subject} {count} tries over {n_weeks} weeks before deciding."
    ),
    "shorter": _alts(
        "Here's {your_subject} in {count} short points. | "
        "Trimmed {your_subject} to the essentials; it fits on one screen now. | "
        "Here's {your_subject} as a checklist with {count} items. | "
        "Cut {your_subject} roughly in half and kept only the steps that matter."
    ),
    "addition": _alts(
        "I've updated {your_subject} and added {extra}. | "
        "Here's {your_subject} again, now with {extra} at the end. | "
        "Added {extra} to {your_subject}; the rest stays the same."
    ),
    "tone": _alts(
        "Here's {your_subject} in a warmer, more casual tone. | "
        "I loosened up {your_subject}: shorter sentences and a friendlier ending. | "
        "Rewrote {your_subject} so it sounds like you talking to a friend."
    ),
    "thanks": _alts(
        "Glad {your_subject} hit the mark. | Hope {your_subject} works out {future}. | "
        "Let me know how {your_subject} goes in practice."
    ),
    "ack": _alts(
        "Good luck with {your_subject}. | Hope {your_subject} goes smoothly. | "
        "Let me know how {your_subject} turns out."
    ),
}
# Replies to a fact the user states, per fact family; {v} and friends are the statement's fields.
FACT_BODIES: dict[str, tuple[str, ...]] = {
    "home_city": _alts(
        "{V} has great food around {place}. | I'll keep suggestions close to {v}. | "
        "{V} is lovely in {season}. | Good to know you're in {v}; {place} there is worth a visit."
    ),
    "employer": _alts(
        "{V} sounds like a busy place. | I'll keep {v} in mind when you ask about work. | "
        "How are things at {v} this {season}?"
    ),
    "job_title": _alts(
        "Being {a} {v} must keep you busy. | That helps, I'll tailor work tips to {a} {v}. | "
        "{A} {v}, nice; I'll keep that in mind for work questions."
    ),
    "job": _alts(
        "{Employer} is lucky to have you as {a} {title}. | Noted: {title} at {employer}. | "
        "That's a solid role at {employer}."
    ),
    "pet": _alts(
        "{V} sounds adorable. | Give {v} a scratch from me. | A {kind} named {v}, great name. | "
        "How old is {v}?"
    ),
    "diet": _alts(
        "I'll keep recipes {v} from now on. | Plenty of great {v} options out there. | "
        "Noted, {v} recipes only."
    ),
    "partner": _alts("Say hi to {v} too! | {V} sounds great. | Lovely, I'll remember {v}."),
    "birthday": _alts("{V}, noted! | I'll remember {v}. | {V} is a nice time of year for a birthday."),
    "learning": _alts(
        "{V} is a great choice. | Good luck with {v}! Short daily practice works best. | "
        "How's the {v} going so far?"
    ),
    "hometown": _alts(
        "{V} must have been a fun place to grow up. | I'll remember {v}. | Do you still visit {v}?"
    ),
    "like": _alts(
        "Sounds like {x} is your thing. | Good taste, {x} is hard to beat. | I'll keep {x} in mind for ideas."
    ),
    "dislike": _alts("Fair enough, I'll leave {x} out of suggestions. | No {x} then! | Noted, no {x}."),
    "favorite": _alts("{V} is a solid pick for a favorite {cat}. | Great choice, {v}. | {V}, nice!"),
    "home_city:change": _alts(
        "Hope the move to {v} went smoothly. | Welcome to {v}! Unpacking always takes longer than planned. | "
        "{V} is a great pick; {place} is worth exploring first."
    ),
    "employer:change": _alts(
        "Congrats on {v}! The first weeks are always a lot. | {V}, exciting. How was the first day? | "
        "Good luck at {v}!"
    ),
    "job:change": _alts(
        "Congrats on the new role at {employer}! | {A} {title} at {employer}, that's a great move. | "
        "Good luck settling in at {employer}."
    ),
    "job_title:change": _alts(
        "Congrats on becoming {a} {v}! | Well deserved, {a} {v} suits you. | A promotion, nice work!"
    ),
    "diet:change": _alts("Good luck going {v}; I'll adapt recipes. | Noted, {v} recipes from now on."),
    "like:change": _alts(
        "Funny how tastes change, {x} it is. | {X} it is, then! | Nice, {x} has grown on you."
    ),
    "dislike:change": _alts(
        "Fair enough, tastes change; I'll drop {x}. | No more {x} suggestions then. | Noted, {x} is out."
    ),
    "favorite:change": _alts("{V}, new favorite noted! | Switching to {v}, good call."),
}
# Personal touches from what the user said earlier; the key must be known.
PERSONAL: dict[str, tuple[str, ...]] = {
    "city": _alts(
        "Since you're in {known_city}, the market near {place} might be handy. | "
        "In {known_city}, {season} weekends are great for this. | "
        "There should be options for this around {known_city}."
    ),
    "job": _alts(
        "As {a_known_job}, you could fit this into a lunch break. | "
        "With your {known_job} schedule, shorter steps might work better."
    ),
    "pet": _alts("Keep {known_pet} away from the kitchen for this one! | {Known_pet} might enjoy this too."),
    "like": _alts(
        "Could be a good excuse for some {known_like} afterwards. | "
        "You could pair this with {known_like} on {day}."
    ),
    "diet": _alts("I kept it {known_diet}-friendly. | Easy to make {known_diet}, too."),
}

# --- e-mails, documents, calendar, events, feedback -----------------------------------------

EMAIL_GREETINGS = _alts("Hi {friend}, | Hey {friend}, | Hello {friend}, | Dear {friend}, | {Friend},")
EMAIL_OPENINGS = _alts(
    "Hope you're well. | Thanks again for the {outing2}, it was lovely. | Long time no see! | "
    "Quick one from me. | "
    "Following up on our chat {past}. | Hope the week is treating you kindly. | Sorry for the slow reply. | "
    "It was so good to catch up {past}."
)
EMAIL_MAINS: tuple[tuple[str, str], ...] = _pairs(
    "Are you still up for the {outing} on {day}? I can book for {time}. ~ {Day} plans | "
    "Attached are the photos from the {outing}; the one at {place} came out great. ~ Photos from the "
    "{outing} | "
    "Could you send me that {dish} recipe? {Who} keeps asking about it. ~ That {dish} recipe | "
    "We're thinking of {city} in {month}. Any tips on where to stay? ~ {City} in {month} | "
    "The {event} is on {day} at {time}; bring {item} if you can. ~ {Event} on {day} | "
    "Just a reminder that {work_item} needs your comments by {day}. ~ Re: {work_item} | "
    "Would you have time for a call about {topic} on {day}? Half an hour is plenty. ~ Quick question | "
    "Thanks for lending me {book}; it'll come back on {day}, promise. ~ Your copy of {book} | "
    "Dinner at {venue} on {day}? They have a table for {n_people} at {time}. ~ Dinner on {day}? | "
    "The quote for fixing the {appliance} came in at {cur}{price}, which seems steep. ~ {Appliance} repair | "
    "Can we move our {meeting} to {day}? Something came up on my side. ~ Moving our {meeting} | "
    "Found {a_outing} in {city} on {day}, tickets are {cur}{price}. Interested? ~ {Outing} on {day}?"
)
EMAIL_CLOSINGS = _alts(
    "Let me know what works. | Say hi to everyone. | Talk soon. | No rush on this. | "
    "Looking forward to it! | Speak {future}. | Thanks in advance."
)
EMAIL_SIGN_OFFS = _alts("Best, | Cheers, | Thanks, | Talk soon, | Warmly, | All the best, | Love,")

DOCUMENTS: tuple[tuple[str, str], ...] = _pairs(
    "Notes on {topic}\n\n- {point}\n- {point2}\n- {point3}\n\nAction items for {future}: {action}. "
    "~ Notes on {topic} | "
    "Trip to {city} ({month})\n\n- Stay: {lodging} near {place}\n- Pack: {clothing}\n- Dinner: {venue}\n"
    "- Budget: {cur}{price} per day ~ Trip to {city} | "
    "{Meeting} notes, {day}\n\nAttendees: {name}, {name2}, {name3}\nDecision: {decision}.\n"
    "Next steps: {name} to follow up on {work_item} by {day2}. ~ {Meeting} notes | "
    "Recipe: {dish}\n\nServes {n_people}. {Ingredient}, {ingredient2}, {spice}.\n"
    "Cook about {minutes} minutes; oven at {temp} degrees.\nNext time: {tweak}. ~ Recipe: {dish} | "
    "Shopping list for {day}\n\n- {item}\n- {item2}\n- {ingredient}\n- {ingredient2}\n- {item3} "
    "~ Shopping list | "
    "Reading notes: {book}\n\nChapter {count}: {thought}\nQuote to look up later, page {price}. "
    "~ Reading notes: {book} | "
    "Plan for {event} ({day})\n\nGuests: {n_people}\nFood: {dish}, {side}\nTo buy: {item}, {item2}\n"
    "Start setup at {time}. ~ {Event} plan | "
    "Weekly goals\n\n1. Finish {work_item}\n2. {Task}\n3. {Exercise} {count} times\n4. {Task2} "
    "~ Weekly goals"
)
NOTE_POINTS = _alts(
    "compare at least {count} sources before deciding | ask {name} how they handled it | "
    "rough budget: {cur}{price} | the {media} {name} recommended covers the basics | "
    "most advice assumes a bigger budget | check what changed since {month} | "
    "the costs add up faster than expected | look for a local group or class | "
    "start small and review after {n_weeks} weeks | write down questions for {day}"
)
NOTE_ACTIONS = _alts(
    "read up and draft a plan | book a call with {name} | collect quotes | set a budget | "
    "try it for {n_weeks} weeks | summarise for {who}"
)
DECISIONS = _alts(
    "go ahead with the smaller scope | push the launch to {month} | hire one more person for {team} | "
    "keep the current vendor for now | run a pilot with {count} customers | revisit after the {meeting}"
)
TWEAKS = _alts(
    "less salt | double the {spice} | bake {count} minutes longer | add {ingredient3} | use a bigger pan | "
    "make it the night before"
)
THOUGHTS = _alts(
    "the pacing picks up here | a lot about memory and place | the ending of this chapter is great | "
    "slow but worth it | reminds me of {book2}"
)
CALENDAR: tuple[str, ...] = _alts(
    "Dentist appointment (Dr. {last}) | {Team} standup | Flight to {city} | "
    "Dinner with {friend} at {venue} | "
    "Yoga class | Spin class | Pottery class | 1:1 with {name} | Parent-teacher meeting | "
    "Haircut | {Meeting} | Call {who_short} | Pick up {item} from {store} | {Friend}'s birthday drinks | "
    "Vet check-up | Car service | Piano lesson | Coffee with {name} ({company}) | {Work_item} deadline | "
    "Train to {city} | {Event} at {friend}'s | Doctor's appointment | Swimming lessons | {Outing}"
)
WHO_SHORT = _split(
    "mom, dad, grandma, grandpa, the bank, the plumber, the landlord, the insurance, Aunt Rosa"
)
LOCATIONS = _alts("Room 3B | Zoom | at home | the office | downtown | the clinic | online | the studio")
EVENT_ROWS: tuple[tuple[str, str], ...] = (
    ("page_view", "Viewed article: {count} best {hobby} spots near {city}"),
    ("page_view", "Viewed article: A beginner's guide to {topic}"),
    ("page_view", "Viewed article: How to make {dish} in {minutes} minutes"),
    ("page_view", "Viewed article: Is {a_product} worth it? A {month} review"),
    ("page_view", "Viewed article: {City} on a budget: {n_days} days for under {cur}{price}"),
    ("page_view", "Viewed article: Explained in {count} charts: {concept}"),
    ("search", "Searched for: {dish} recipe for {n_people}"),
    ("search", "Searched for: {dish} without {ingredient}"),
    ("search", "Searched for: weather {city} {day}"),
    ("search", "Searched for: {product} vs {product2}"),
    ("search", "Searched for: {hobby} classes near me"),
    ("search", "Searched for: cheap flights to {city} in {month}"),
    ("search", "Searched for: {gadget} {problem}"),
    ("search", "Searched for: {venue} {city} opening hours"),
    ("search", "Searched for: {concept} simple explanation {month}"),
    ("click", "Clicked newsletter link: {topic} in {month}: what changed"),
    ("click", "Clicked newsletter link: {count} {hobby} tips for {season}"),
    ("click", "Clicked newsletter link: {Outing} tickets in {city}"),
)
FEEDBACK: tuple[tuple[int, str], ...] = (
    (5, "Thumbs up on the {hobby} suggestions for {city}."),
    (5, "Great summary of {topic}, thanks! Sent it to {friend}."),
    (5, "The {dish} recipe worked perfectly for {n_people} people."),
    (5, "Spot on about {place} in {city}, thanks."),
    (4, "Helpful, but a bit long; the part about {topic} could go."),
    (4, "Useful {city} tips, though {place} was under renovation."),
    (4, "Good list, though {venue} was fully booked."),
    (4, "Nice {doc} draft, just needed a softer ending."),
    (3, "The {topic} answer was okay, but it missed {extra}."),
    (3, "The {event} plan for {n_people} people was fine, a bit generic."),
    (2, "The answer about {topic} was outdated; a lot changed since {month}."),
    (2, "The {city} itinerary had too many stops for {n_days} days."),
    (1, "That restaurant in {city} was closed on {day}."),
    (1, "The {gadget} fix didn't help, it still {problem}."),
)
# Around a fact the user writes down in an e-mail or an "About me" document.
NEWS_SUBJECTS = _alts("Some news | Update from me | News! | Catching up | Long overdue update | Quick update")
NEWS_CLOSINGS = _alts(
    "Let's catch up soon. | Would love to hear your news too. | Coffee {future}? | "
    "More when I see you. | Say hi to everyone."
)
PROFILE_LINES = _alts(
    "Short answers and bullet points work best for me. | Please keep replies brief. | "
    "Detailed explanations are welcome. | Examples help more than theory. | "
    "Plain language please, no jargon. | Weekends are for family, weekdays for work questions."
)
